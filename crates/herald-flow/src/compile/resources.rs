//! A flow's resources besides variables, as Salesforce's Flow Builder has them: formula resources,
//! text templates and constants.
//!
//! They are declared before the elements are compiled, so that any value of the flow can read them as
//! `{!name}` whatever the order of the file. A formula or a template may read another one, so their
//! bodies are compiled after every name is known and the references between them are checked for a
//! cycle: a formula that reads itself, even through others, would never finish at run time.

use super::{FlowCompiler, FlowContext, expr_diagnostic, scalar_type};
use crate::flow::{FormulaResource, Slot, TextTemplateResource, Variable};
use herald_codes as codes;
use herald_expr::{Formula, RefId, Template, Type as ExprType, Value};
use herald_project::{YamlPath, did_you_mean, is_api_name};

/// The names a flow's resources declare, with what each stands for.
#[derive(Default)]
pub(crate) struct Resources {
    /// Constants with their typed values.
    pub constants: Vec<(String, Value)>,
    /// Formula resources with their declared types, in the order of the file.
    pub formulas: Vec<(String, ExprType)>,
    /// Text templates, in the order of the file.
    pub templates: Vec<String>,
}

impl Resources {
    /// The slot a reference to resource `name` stands for, and its type.
    pub fn slot(&self, name: &str) -> Option<(Slot, ExprType)> {
        if let Some((_, value)) = self.constants.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return Some((Slot::Constant(value.clone()), value.type_of()));
        }
        if let Some(index) = self.formulas.iter().position(|(n, _)| n.eq_ignore_ascii_case(name)) {
            let ty = self.formulas[index].1;
            return Some((Slot::Formula { index, ty }, ty));
        }
        let index = self.templates.iter().position(|n| n.eq_ignore_ascii_case(name))?;
        Some((Slot::TextTemplate(index), ExprType::Text))
    }

    /// What kind of resource `name` is, for messages: "constant", "formula" or "text template".
    pub fn kind_of(&self, name: &str) -> Option<&'static str> {
        if self.constants.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            Some("constant")
        } else if self.formulas.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            Some("formula")
        } else if self.templates.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            Some("text template")
        } else {
            None
        }
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.constants
            .iter()
            .map(|(n, _)| n.as_str())
            .chain(self.formulas.iter().map(|(n, _)| n.as_str()))
            .chain(self.templates.iter().map(String::as_str))
    }
}

/// The reason a resource written as `target` cannot be written, when it is a resource.
pub(crate) fn read_only(resources: &Resources, target: &str) -> Option<(String, String)> {
    let kind = resources.kind_of(target)?;
    let message = format!("`{target}` is a {kind}; resources other than variables are read-only");
    let hint = match kind {
        "constant" => format!(
            "declare a variable instead (`variables: {{{target}: {{type: ..., default: ...}}}}`) to change its value"
        ),
        _ => format!("a {kind} is computed when it is read; assign to a variable it reads instead"),
    };
    Some((message, hint))
}

/// How many formulas and templates a read may go through, one inside another: each is a nested
/// evaluation on the run's stack.
const MAX_CHAIN: usize = 64;

const SCALARS: [&str; 6] = ["Text", "Number", "Boolean", "Date", "DateTime", "Time"];

impl FlowCompiler<'_> {
    /// Declares every resource: names checked against each other, the variables and the elements;
    /// types known; constants' values of their type.
    pub(crate) fn declare_resources(&mut self, variables: &[Variable]) -> Resources {
        let def = self.def;
        let mut resources = Resources::default();
        let mut taken: Vec<(String, String)> =
            variables.iter().map(|v| (v.name.clone(), "a variable".to_string())).collect();
        taken.extend(def.elements.keys().map(|e| (e.clone(), "an element".to_string())));
        let declared = def
            .constants
            .keys()
            .map(|n| ("constants", n))
            .chain(def.formulas.keys().map(|n| ("formulas", n)))
            .chain(def.text_templates.keys().map(|n| ("text_templates", n)));
        let mut accepted = Vec::new();
        for (section, name) in declared {
            let path = YamlPath::root().key(section).key(name);
            if !is_api_name(name) {
                self.error(
                    &path,
                    codes::HF042,
                    format!("`{name}` is not a valid resource name"),
                    Some("use letters, digits and single underscores, starting with a letter".into()),
                );
                continue;
            }
            if let Some((_, what)) = taken.iter().find(|(other, _)| other.eq_ignore_ascii_case(name)) {
                self.error(
                    &path,
                    codes::HF042,
                    format!(
                        "`{name}` is already {what} of this flow; a reference `{{!{name}}}` could mean either"
                    ),
                    Some("give the resource a name of its own".into()),
                );
                continue;
            }
            taken.push((name.clone(), format!("a resource under `{section}:`")));
            accepted.push((section, name));
        }
        for (section, name) in accepted {
            let path = YamlPath::root().key(section).key(name);
            match section {
                "constants" => {
                    let constant = &def.constants[name];
                    let Some(ty) = self.resource_type(&path, &constant.data_type) else { continue };
                    match Value::from_json(&constant.value, ty) {
                        Ok(value) => resources.constants.push((name.clone(), value)),
                        Err(error) => self.value_error(
                            &path.key("value"),
                            codes::HF040,
                            format!(
                                "the constant `{name}` is declared {ty}, but its value does not fit: {error}"
                            ),
                            Some(format!("write a {ty} value, or change `type`")),
                        ),
                    }
                }
                "formulas" => {
                    let Some(ty) = self.resource_type(&path, &def.formulas[name].data_type) else { continue };
                    resources.formulas.push((name.clone(), ty));
                }
                _ => resources.templates.push(name.clone()),
            }
        }
        resources
    }

    fn resource_type(&mut self, path: &YamlPath, written: &str) -> Option<ExprType> {
        let found = scalar_type(written);
        if found.is_none() {
            let hint = did_you_mean(written, SCALARS)
                .unwrap_or_else(|| "use Text, Number, Boolean, Date, DateTime or Time".into());
            self.value_error(
                &path.key("type"),
                codes::HF040,
                format!("unknown type `{written}` for a resource"),
                Some(hint),
            );
        }
        found
    }

    /// Compiles the bodies of the formulas and text templates, checking each formula's type and
    /// refusing a cycle between them. `None` when any of them has a problem.
    pub(crate) fn compile_resources(
        &mut self,
        context: &FlowContext<'_>,
    ) -> Option<(Vec<FormulaResource>, Vec<TextTemplateResource>)> {
        let def = self.def;
        let resources = context.resources;
        let before = self.diagnostics.len();
        let mut formulas = Vec::new();
        for (name, ty) in &resources.formulas {
            let path = YamlPath::root().key("formulas").key(name);
            let expression = &def.formulas[name].expression;
            let resolver = self.resolver(context, None);
            match Formula::compile(expression, &resolver) {
                Ok(formula) if formula.result_type() == *ty || formula.result_type() == ExprType::Null => {
                    formulas.push(FormulaResource { name: name.clone(), formula });
                }
                Ok(formula) => {
                    let found = formula.result_type();
                    let hint = match ty {
                        ExprType::Text => {
                            "wrap the expression in TEXT(), or declare `type` as the expression's type"
                                .to_string()
                        }
                        _ => format!("declare `type: {found}`, or change the expression to return {ty}"),
                    };
                    self.value_error(
                        &path.key("expression"),
                        codes::HF040,
                        format!("the formula `{name}` is declared {ty}, but its expression returns {found}"),
                        Some(hint),
                    );
                }
                Err(error) => self.diagnostics.push(expr_diagnostic(
                    self.project,
                    self.source,
                    &path.key("expression"),
                    &error,
                )),
            }
        }
        let mut templates = Vec::new();
        for name in &resources.templates {
            let path = YamlPath::root().key("text_templates").key(name);
            let resolver = self.resolver(context, None);
            match Template::compile(&def.text_templates[name].text, &resolver) {
                Ok(template) => templates.push(TextTemplateResource { name: name.clone(), template }),
                Err(error) => self.diagnostics.push(expr_diagnostic(
                    self.project,
                    self.source,
                    &path.key("text"),
                    &error,
                )),
            }
        }
        if self.diagnostics.len() != before {
            return None;
        }
        self.refuse_cycles(&formulas, &templates)?;
        Some((formulas, templates))
    }

    /// Finds a formula or text template that reads itself through others, and reports it at the
    /// first resource of the cycle with the whole chain.
    fn refuse_cycles(
        &mut self,
        formulas: &[FormulaResource],
        templates: &[TextTemplateResource],
    ) -> Option<()> {
        let count = formulas.len() + templates.len();
        let slots = self.table.slots.borrow().clone();
        let node_of = |id: &RefId| match slots.get(id.0 as usize) {
            Some(Slot::Formula { index, .. }) => Some(*index),
            Some(Slot::TextTemplate(index)) => Some(formulas.len() + index),
            _ => None,
        };
        let edges: Vec<Vec<usize>> = formulas
            .iter()
            .map(|f| f.formula.references())
            .chain(templates.iter().map(|t| t.template.references()))
            .map(|refs| refs.iter().filter_map(node_of).collect())
            .collect();
        let name = |node: usize| {
            if node < formulas.len() { &formulas[node].name } else { &templates[node - formulas.len()].name }
        };
        // 0: not seen, 1: on the current path, 2: done.
        let mut state = vec![0u8; count];
        let mut path = Vec::new();
        for start in 0..count {
            if state[start] == 0
                && let Some(cycle) = find_cycle(start, &edges, &mut state, &mut path)
            {
                let first = cycle[0];
                let chain: Vec<&str> = cycle.iter().chain([&first]).map(|n| name(*n).as_str()).collect();
                let section = if first < formulas.len() { "formulas" } else { "text_templates" };
                let key = if first < formulas.len() { "expression" } else { "text" };
                let at = YamlPath::root().key(section).key(name(first)).key(key);
                self.value_error(
                    &at,
                    codes::HF041,
                    format!("`{}` reads itself: {}", name(first), chain.join(" -> ")),
                    Some("break the cycle: compute one of them from variables or fields instead".into()),
                );
                return None;
            }
        }
        let (deepest, depth) = longest_chain(&edges);
        if depth > MAX_CHAIN {
            let section = if deepest < formulas.len() { "formulas" } else { "text_templates" };
            let key = if deepest < formulas.len() { "expression" } else { "text" };
            let at = YamlPath::root().key(section).key(name(deepest)).key(key);
            self.value_error(
                &at,
                codes::HF041,
                format!(
                    "`{}` reads {depth} resources deep, one through another; herald allows {MAX_CHAIN}",
                    name(deepest)
                ),
                Some("compute it from fewer formulas in a row, e.g. by writing the inner ones out".into()),
            );
            return None;
        }
        Some(())
    }
}

/// Depth-first search from `node`, with its own stack (a flow may declare thousands of resources);
/// the nodes of the first cycle found, in order.
fn find_cycle(
    node: usize,
    edges: &[Vec<usize>],
    state: &mut [u8],
    path: &mut Vec<usize>,
) -> Option<Vec<usize>> {
    // Each frame: a node on the current path and the next of its edges to follow.
    let mut frames: Vec<(usize, usize)> = vec![(node, 0)];
    state[node] = 1;
    path.push(node);
    while let Some((current, edge)) = frames.last_mut() {
        let Some(&next) = edges[*current].get(*edge) else {
            state[*current] = 2;
            path.pop();
            frames.pop();
            continue;
        };
        *edge += 1;
        match state[next] {
            1 => {
                let from = path.iter().position(|n| *n == next).unwrap_or(0);
                return Some(path[from..].to_vec());
            }
            0 => {
                state[next] = 1;
                path.push(next);
                frames.push((next, 0));
            }
            _ => {}
        }
    }
    None
}

/// The longest chain of resources read through one another, from any resource (the graph has no
/// cycle). Each link is a nested evaluation when the run reads the first one.
fn longest_chain(edges: &[Vec<usize>]) -> (usize, usize) {
    // Kahn's order over "reads" edges: a node's depth is one more than its deepest dependency's.
    let count = edges.len();
    let mut readers = vec![Vec::new(); count];
    let mut pending: Vec<usize> = edges.iter().map(Vec::len).collect();
    for (node, targets) in edges.iter().enumerate() {
        for &target in targets {
            readers[target].push(node);
        }
    }
    let mut depth = vec![1usize; count];
    let mut ready: Vec<usize> = (0..count).filter(|n| pending[*n] == 0).collect();
    while let Some(node) = ready.pop() {
        for &reader in &readers[node] {
            depth[reader] = depth[reader].max(depth[node] + 1);
            pending[reader] -= 1;
            if pending[reader] == 0 {
                ready.push(reader);
            }
        }
    }
    depth.iter().copied().enumerate().max_by_key(|(_, d)| *d).map_or((0, 0), |(n, d)| (n, d))
}
