//! Scheduled paths, the asynchronous path and the Wait element: the keys that make a run wait
//! durably or start apart from the immediate path. Checked here so that a path that could never run
//! (an unknown time field, an offset with no unit) is refused at load, not found out an hour later.

use super::{FlowCompiler, FlowContext, expr_diagnostic};
use crate::flow::{ScheduledPath, WaitElement};
use herald_codes as codes;
use herald_expr::{Formula, Type as ExprType};
use herald_project::{DurationDef, ElementDef, FieldType, OffsetDirection, YamlPath};
use std::collections::HashMap;

/// Ten years in minutes: far beyond any follow-up, small enough that no date arithmetic overflows.
const MAX_MINUTES: i64 = 10 * 366 * 24 * 60;

/// A length written as exactly one of `minutes`, `hours`, `days`, in minutes; the problem otherwise.
fn minutes_of(minutes: Option<i64>, hours: Option<i64>, days: Option<i64>) -> Result<i64, String> {
    let given: Vec<(i64, i64)> =
        [(minutes, 1), (hours, 60), (days, 24 * 60)].into_iter().filter_map(|(v, f)| Some((v?, f))).collect();
    match given.as_slice() {
        [] => Err("no length of time: give one of `minutes`, `hours` or `days`".into()),
        [(value, _)] if *value < 0 => Err(format!(
            "{value} is negative; write the length as 0 or more (use `direction: before` on a scheduled path)"
        )),
        [(value, factor)] => match value.checked_mul(*factor) {
            Some(total) if total <= MAX_MINUTES => Ok(total),
            _ => Err(format!("{value} is too long; at most ten years")),
        },
        _ => Err("more than one unit: give only one of `minutes`, `hours` or `days`".into()),
    }
}

fn duration_minutes(duration: &DurationDef) -> Result<i64, String> {
    minutes_of(duration.minutes, duration.hours, duration.days)
}

impl FlowCompiler<'_> {
    /// The flow's scheduled paths and its asynchronous path's start.
    pub(super) fn paths(
        &mut self,
        context: &FlowContext<'_>,
        index: &HashMap<String, usize>,
    ) -> (Vec<ScheduledPath>, Option<usize>) {
        let def = self.def;
        let root = YamlPath::root();
        if def.trigger.is_none() {
            for (key, present) in [
                ("scheduled_paths", !def.scheduled_paths.is_empty()),
                ("async_path", def.async_path.is_some()),
            ] {
                if present {
                    self.error(
                        &root.key(key),
                        codes::HF050,
                        format!("`{key}` needs a record-triggered flow; this flow has no `trigger:`"),
                        Some("add a `trigger:`, or use a Wait element in an autolaunched flow".into()),
                    );
                }
            }
            return (Vec::new(), None);
        }
        let mut paths = Vec::new();
        for (name, path_def) in &def.scheduled_paths {
            let path = root.key("scheduled_paths").key(name);
            if !herald_project::is_api_name(name) {
                self.error(
                    &path,
                    codes::HF054,
                    format!("`{name}` is not a valid scheduled path API name"),
                    Some("use letters, digits and underscores; put the display name in `label`".into()),
                );
            }
            let start = self.target(&path.key("start"), &path_def.start, index);
            let minutes = match duration_minutes(&path_def.offset) {
                Ok(minutes) => Some(minutes),
                Err(problem) => {
                    self.error(
                        &path.key("offset"),
                        codes::HF051,
                        format!("scheduled path `{name}`: the offset has {problem}"),
                        Some("write e.g. `offset: {hours: 1}`".into()),
                    );
                    None
                }
            };
            let field = match &path_def.field {
                None => {
                    if path_def.direction == OffsetDirection::Before {
                        self.error(
                            &path.key("direction"),
                            codes::HF051,
                            format!(
                                "scheduled path `{name}` runs before the trigger, which has already happened"
                            ),
                            Some("use `direction: after`, or count from a Date or DateTime `field`".into()),
                        );
                    }
                    None
                }
                Some(field) => self.time_field(name, field, &path.key("field"), context),
            };
            if let (Some(start), Some(minutes)) = (start, minutes)
                && (path_def.field.is_none() || field.is_some())
            {
                let offset_minutes =
                    if path_def.direction == OffsetDirection::Before { -minutes } else { minutes };
                paths.push(ScheduledPath {
                    name: name.clone(),
                    label: path_def.label.clone().unwrap_or_else(|| name.replace('_', " ")),
                    field,
                    offset_minutes,
                    start,
                });
            }
        }
        let async_start = def
            .async_path
            .as_ref()
            .and_then(|a| self.target(&root.key("async_path").key("start"), &a.start, index));
        (paths, async_start)
    }

    /// The time source of a scheduled path: a Date or DateTime field of the triggering object.
    fn time_field(
        &mut self,
        path_name: &str,
        field: &str,
        at: &YamlPath,
        context: &FlowContext<'_>,
    ) -> Option<String> {
        match context.fields.iter().find(|(name, _)| name.eq_ignore_ascii_case(field)) {
            Some((name, FieldType::Date | FieldType::Datetime)) => Some(name.clone()),
            Some((name, other)) => {
                self.value_error(
                    at,
                    codes::HF052,
                    format!(
                        "scheduled path `{path_name}` counts from `{name}`, a {} field; the time source must be a Date or DateTime field",
                        other.name()
                    ),
                    Some("name a date or datetime field, or remove `field` to count from the trigger".into()),
                );
                None
            }
            None => {
                let hint =
                    herald_project::did_you_mean(field, context.fields.iter().map(|(n, _)| n.as_str()))
                        .or_else(|| Some("remove `field` to count from the trigger".into()));
                self.value_error(
                    at,
                    codes::HF052,
                    format!("scheduled path `{path_name}`: {} has no field `{field}`", context.object),
                    hint,
                );
                None
            }
        }
    }

    /// A Wait element: only in autolaunched flows; a length or an `until` formula, not both.
    pub(super) fn wait_element(
        &mut self,
        def: &ElementDef,
        path: &YamlPath,
        context: &FlowContext<'_>,
    ) -> Option<WaitElement> {
        let wait = def.wait.as_ref()?;
        let path = path.key("wait");
        if self.def.trigger.is_some() {
            self.error(
                &path,
                codes::HF050,
                "a Wait element needs an autolaunched flow; a record-triggered flow waits with a scheduled path",
                Some("move the elements after the wait to a `scheduled_paths` entry".into()),
            );
            return None;
        }
        let has_length = wait.minutes.is_some() || wait.hours.is_some() || wait.days.is_some();
        match (&wait.until, has_length) {
            (Some(_), true) => {
                self.error(
                    &path,
                    codes::HF053,
                    "a Wait has both `until` and a length of time",
                    Some("keep one of them".into()),
                );
                None
            }
            (Some(formula), false) => match Formula::compile(formula, &self.resolver(context, None)) {
                Ok(compiled) if compiled.result_type() == ExprType::DateTime => {
                    Some(WaitElement::Until(compiled))
                }
                Ok(compiled) => {
                    self.value_error(
                        &path.key("until"),
                        codes::HF053,
                        format!(
                            "the Wait's `until` formula returns {}, not DateTime",
                            compiled.result_type()
                        ),
                        Some("e.g. `{!$Flow.CurrentDateTime} + 1/24` for one hour from now".into()),
                    );
                    None
                }
                Err(error) => {
                    self.diagnostics.push(expr_diagnostic(
                        self.project,
                        self.source,
                        &path.key("until"),
                        &error,
                    ));
                    None
                }
            },
            (None, _) => match minutes_of(wait.minutes, wait.hours, wait.days) {
                Ok(minutes) => Some(WaitElement::Minutes(minutes)),
                Err(problem) => {
                    self.error(
                        &path,
                        codes::HF051,
                        format!("the Wait has {problem}"),
                        Some("write e.g. `wait: {minutes: 60}`, or `wait: {until: \"...\"}`".into()),
                    );
                    None
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::minutes_of;

    #[test]
    fn a_length_is_exactly_one_unit_of_zero_or_more() {
        assert_eq!(minutes_of(None, Some(2), None), Ok(120));
        assert_eq!(minutes_of(None, None, Some(1)), Ok(1440));
        assert!(minutes_of(None, None, None).unwrap_err().contains("no length"));
        assert!(minutes_of(Some(1), Some(1), None).unwrap_err().contains("more than one unit"));
        assert!(minutes_of(Some(-5), None, None).unwrap_err().contains("negative"));
        assert!(minutes_of(None, None, Some(i64::MAX)).unwrap_err().contains("too long"));
    }
}
