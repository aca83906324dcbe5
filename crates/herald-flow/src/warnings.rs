//! Warnings: problems worth knowing that do not stop a project from loading.
//!
//! HW001: the fixed text of an SMS already forces UCS-2, so every message costs more parts whatever
//! the merge fields hold.

use herald_codes as codes;
use herald_project::{Diagnostic, Project, YamlPath};
use herald_providers::Provider;
use herald_sms::PartLimit;
use serde_json::Value;

/// Every HW001 warning of a loaded project.
pub fn template_warnings(project: &Project) -> Vec<Diagnostic> {
    let mut warnings = Vec::new();
    for flow in project.flows.values() {
        // The body fields that hold an SMS's text, by the providers the flow's actions call (chat
        // channels have none: they are not split into SMS parts).
        let mut sms_fields: Vec<(&str, Provider)> = Vec::new();
        for def in flow.def.elements.values() {
            let Some((service, _)) = def.action.as_deref().and_then(|a| a.split_once('.')) else { continue };
            if let Some(service) = project.services.get(service) {
                let provider = service.def.provider;
                sms_fields.extend(provider.text_inputs().iter().map(|field| (*field, provider)));
            }
        }
        let provider_of = |field: &str| sms_fields.iter().find(|(f, _)| *f == field).map(|(_, p)| *p);
        if sms_fields.is_empty() {
            continue;
        }
        let elements = YamlPath::root().key("elements");
        for (name, def) in &flow.def.elements {
            let path = elements.key(name);
            for (input, value) in &def.inputs {
                if let Some(provider) = provider_of(input) {
                    let at = path.key("inputs").key(input);
                    let (at, value) = through_template(&flow.def, at, value);
                    check(project, flow.source, &at, value, provider, &mut warnings);
                }
            }
            // Bodies built by Assignment (`smsBody.text: "..."`, seed 001's way).
            for (index, item) in def.assign.iter().flatten().enumerate() {
                for (target, value) in item {
                    let field = target.rsplit('.').next().unwrap_or(target);
                    if target.contains('.')
                        && let Some(provider) = provider_of(field)
                    {
                        let at = path.key("assign").index(index).key(target);
                        let (at, value) = through_template(&flow.def, at, value);
                        check(project, flow.source, &at, value, provider, &mut warnings);
                    }
                }
            }
        }
    }
    // A text template read by several inputs is one problem, at the template.
    warnings.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    warnings.dedup_by(|a, b| (&a.file, a.line, a.column) == (&b.file, b.line, b.column));
    warnings
}

/// A value that is one text template read whole (`"{!Welcome_Text}"`) is judged by the template's
/// text, at the template's place in the file.
fn through_template<'f>(
    flow: &'f herald_project::FlowDef,
    at: YamlPath,
    value: &'f Value,
) -> (YamlPath, Option<&'f str>) {
    let Some(text) = value.as_str() else { return (at, None) };
    let name = text.trim().strip_prefix("{!").and_then(|v| v.strip_suffix('}')).map(str::trim);
    let found = name.and_then(|name| flow.text_templates.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)));
    match found {
        Some((name, template)) => {
            (YamlPath::root().key("text_templates").key(name).key("text"), Some(template.text.as_str()))
        }
        None => (at, Some(text)),
    }
}

fn check(
    project: &Project,
    source: herald_project::SourceId,
    path: &YamlPath,
    template: Option<&str>,
    provider: Provider,
    warnings: &mut Vec<Diagnostic>,
) {
    let Some(template) = template else { return };
    let pieces = herald_expr::template_literals(template);
    let fixed: String = pieces.iter().map(|(_, text)| *text).collect();
    let info = herald_sms::inspect(&fixed);
    let limit = provider.max_parts().map(|max_parts| PartLimit { provider: provider.label(), max_parts });
    let Some(explained) = herald_sms::warning_for(&info, limit) else { return };
    // Where the first forcing character sits in the source, for the column.
    let offset = info.forcing_characters.first().and_then(|first| {
        let mut seen = 0;
        for (start, text) in &pieces {
            let count = text.chars().count();
            if first.char_index < seen + count {
                let byte = text.char_indices().nth(first.char_index - seen).map(|(b, _)| b)?;
                return Some(start + byte);
            }
            seen += count;
        }
        None
    });
    let file = &project.source(source).path;
    let position = project.source(source).locator.value(path, offset);
    warnings.push(
        Diagnostic::warning(
            codes::HW001,
            file,
            format!(
                "the fixed text of this SMS forces UCS-2 before any merge field is filled: {explained} (positions count the fixed text only)"
            ),
        )
        .at(position)
        .hint("every message from this template pays for UCS-2 parts (70 characters, 67 when split); keep it if the character matters"),
    );
}

/// The tags Flow Builder's rich text editor writes; a text template holding one was written as Rich
/// Text (or pasted from it), and an SMS body would carry the markup as text.
const HTML_TAGS: [&str; 22] = [
    "a", "b", "br", "div", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "i", "img", "li", "ol", "p",
    "s", "span", "strong", "u", "ul",
];

/// Where the first HTML tag of `text` starts, and the tag as written.
fn first_html_tag(text: &str) -> Option<(usize, &str)> {
    let bytes = text.as_bytes();
    for (start, _) in text.match_indices('<') {
        let mut name_start = start + 1;
        if bytes.get(name_start) == Some(&b'/') {
            name_start += 1;
        }
        let name_end = text[name_start..]
            .find(|c: char| !c.is_ascii_alphanumeric())
            .map_or(text.len(), |n| name_start + n);
        let name = &text[name_start..name_end];
        let closes =
            matches!(bytes.get(name_end), Some(b'>' | b' ' | b'/')) && text[name_end..].contains('>');
        if closes && HTML_TAGS.iter().any(|tag| tag.eq_ignore_ascii_case(name)) {
            let end = text[start..].find('>').map_or(text.len(), |n| start + n + 1);
            return Some((start, &text[start..end]));
        }
    }
    None
}

/// HW002: a text template that holds HTML tags. Seed 000 warns that Rich Text breaks an SMS body:
/// the provider sends the tags as they are.
pub fn text_template_html_warnings(project: &Project) -> Vec<Diagnostic> {
    let mut warnings = Vec::new();
    for flow in project.flows.values() {
        for (name, template) in &flow.def.text_templates {
            // Judge only the fixed text: a merge field may hold anything.
            let Some((offset, tag)) = herald_expr::template_literals(&template.text)
                .into_iter()
                .find_map(|(start, piece)| first_html_tag(piece).map(|(at, tag)| (start + at, tag)))
            else {
                continue;
            };
            let path = YamlPath::root().key("text_templates").key(name).key("text");
            let source = project.source(flow.source);
            warnings.push(
                Diagnostic::warning(
                    codes::HW002,
                    &source.path,
                    format!(
                        "the text template `{name}` holds the HTML tag `{tag}`; a text template is plain text, and an SMS would carry the tag as written"
                    ),
                )
                .at(source.locator.value(&path, Some(offset)))
                .hint("remove the markup (a text template is sent as written: Rich Text breaks an SMS body)"),
            );
        }
    }
    warnings
}

/// HW006: scheduled paths on a flow that starts on every update that meets its condition. Each such
/// update schedules the paths again, so a Lead edited three times gets three follow-up texts.
/// Salesforce offers scheduled paths on an update-triggered flow only with "Only when a record is
/// updated to meet the condition requirements"; herald warns rather than refuses, since a path that
/// sends nothing (or a condition that only the first update meets) can be meant.
pub fn repeated_scheduled_path_warnings(project: &Project) -> Vec<Diagnostic> {
    let mut warnings = Vec::new();
    for flow in project.flows.values() {
        let Some(trigger) = &flow.def.trigger else { continue };
        if trigger.on == herald_project::TriggerEvent::Create
            || trigger.only_when_updated_to_meet
            || flow.def.scheduled_paths.is_empty()
        {
            continue;
        }
        let source = project.source(flow.source);
        let path = YamlPath::root().key("scheduled_paths");
        warnings.push(
            Diagnostic::warning(
                codes::HW006,
                &source.path,
                "this flow starts on every update that meets its condition, and each such update schedules its scheduled paths again (a record edited three times gets three follow-ups)",
            )
            .at(source.locator.value(&path, None))
            .hint("set `only_when_updated_to_meet: true` under `trigger:`, as Salesforce requires for scheduled paths on updates, or trigger on `create`"),
        );
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::first_html_tag;

    #[test]
    fn html_tags_are_found_and_angle_brackets_in_prose_are_not() {
        assert_eq!(first_html_tag("Hi <p>there</p>"), Some((3, "<p>")));
        assert_eq!(first_html_tag("a<br/>b"), Some((1, "<br/>")));
        assert_eq!(first_html_tag("x <span style=\"c\">y"), Some((2, "<span style=\"c\">")));
        assert_eq!(first_html_tag("Reply <STOP> to opt out"), None);
        assert_eq!(first_html_tag("1 < 2 and 3 > 2"), None);
        assert_eq!(first_html_tag("a <b"), None);
    }
}
