//! Subflow elements: a call of another autolaunched flow of the project. Each call is checked against
//! the called flow's file (its variables marked `input` / `output` and their types), so a wrong name or
//! type is found when the project loads; and across the project, no chain of calls may loop back on
//! itself or nest deeper than [`MAX_SUBFLOW_DEPTH`], since every level lives in the run's journaled state.

use super::*;
use herald_project::{Diagnostics, VariableDef};

/// How many subflow calls may be nested below the flow a run starts in.
pub(crate) const MAX_SUBFLOW_DEPTH: usize = 8;

/// A variable of a flow file, typed as the compiler sees it (the called flow may compile later).
fn def_type(project: &Project, def: &VariableDef) -> VariableType {
    match scalar_type(&def.data_type) {
        Some(ty) => VariableType::Scalar(ty),
        None => match super::records::record_object(project, &def.data_type) {
            Some(object) if super::find_type(project, &def.data_type).is_none() => {
                VariableType::Record(object)
            }
            _ => VariableType::Object(def.data_type.clone()),
        },
    }
}

fn def_type_name(project: &Project, def: &VariableDef) -> String {
    let base = match def_type(project, def) {
        VariableType::Scalar(ty) => ty.to_string(),
        VariableType::Object(name) | VariableType::Record(name) => name,
    };
    if def.collection { format!("{base} collection") } else { base }
}

impl FlowCompiler<'_> {
    pub(super) fn subflow(
        &mut self,
        called: &str,
        def: &ElementDef,
        path: &YamlPath,
        context: &FlowContext<'_>,
    ) -> Option<SubflowElement> {
        let flow_path = path.key("subflow");
        let Some(child) = self.project.flows.get(called) else {
            let autolaunched: Vec<&str> = self
                .project
                .flows
                .iter()
                .filter(|(_, f)| f.def.trigger.is_none())
                .map(|(name, _)| name.as_str())
                .collect();
            let hint = did_you_mean(called, autolaunched.iter().copied()).or_else(|| {
                Some(if autolaunched.is_empty() {
                    "the project has no autolaunched flow; add one in flows/ without `trigger:`".into()
                } else {
                    format!("autolaunched flows: {}", autolaunched.join(", "))
                })
            });
            self.value_error(&flow_path, codes::HF045, format!("no flow named `{called}`"), hint);
            return None;
        };
        if let Some(trigger) = &child.def.trigger {
            self.value_error(
                &flow_path,
                codes::HF045,
                format!(
                    "`{called}` is record-triggered (on {}); only an autolaunched flow can be called as a subflow",
                    trigger.object
                ),
                Some(format!(
                    "call an autolaunched flow (one without `trigger:`), or remove `trigger:` from flows/{called}.yaml"
                )),
            );
            return None;
        }
        let variables = &child.def.variables;
        let find = |name: &str| variables.iter().find(|(n, _)| n.eq_ignore_ascii_case(name));
        let listed = |flag: fn(&VariableDef) -> bool| -> Vec<&str> {
            variables.iter().filter(|(_, v)| flag(v)).map(|(n, _)| n.as_str()).collect()
        };
        let mut ok = true;
        let mut inputs = Vec::new();
        for (input, value) in &def.inputs {
            let input_path = path.key("inputs").key(input);
            let Some((name, variable)) = find(input) else {
                let names = listed(|v| v.input);
                let hint = did_you_mean(input, names.iter().copied()).or_else(|| {
                    Some(if names.is_empty() {
                        format!(
                            "`{called}` has no input variables; mark one `input: true` in flows/{called}.yaml"
                        )
                    } else {
                        format!("its input variables are: {}", names.join(", "))
                    })
                });
                self.error(&input_path, codes::HF046, format!("`{called}` has no variable `{input}`"), hint);
                ok = false;
                continue;
            };
            if !variable.input {
                self.error(
                    &input_path,
                    codes::HF046,
                    format!("variable `{name}` of `{called}` is not available for input"),
                    Some(format!("mark it `input: true` in flows/{called}.yaml")),
                );
                ok = false;
                continue;
            }
            let Some(expr) = self.value_expr(&input_path, value, context, None) else {
                ok = false;
                continue;
            };
            if let Some(problem) = self.input_problem(variable, &expr, context) {
                self.value_error(
                    &input_path,
                    codes::HF046,
                    format!(
                        "input `{name}` of `{called}` ({}): {problem}",
                        def_type_name(self.project, variable)
                    ),
                    None,
                );
                ok = false;
                continue;
            }
            inputs.push((name.clone(), expr));
        }
        let mut outputs = Vec::new();
        for (output, target) in &def.outputs {
            let output_path = path.key("outputs").key(output);
            let Some((name, variable)) = find(output) else {
                let names = listed(|v| v.output);
                let hint = did_you_mean(output, names.iter().copied()).or_else(|| {
                    Some(if names.is_empty() {
                        format!("`{called}` has no output variables; mark one `output: true` in flows/{called}.yaml")
                    } else {
                        format!("its output variables are: {}", names.join(", "))
                    })
                });
                self.error(
                    &output_path,
                    codes::HF047,
                    format!("`{called}` has no variable `{output}`"),
                    hint,
                );
                ok = false;
                continue;
            };
            if !variable.output {
                self.error(
                    &output_path,
                    codes::HF047,
                    format!("variable `{name}` of `{called}` is not available for output"),
                    Some(format!("mark it `output: true` in flows/{called}.yaml")),
                );
                ok = false;
                continue;
            }
            let Some(index) = context.variables.iter().position(|v| v.name.eq_ignore_ascii_case(target))
            else {
                let hint =
                    did_you_mean(target, context.variables.iter().map(|v| v.name.as_str())).or_else(|| {
                        Some(format!(
                            "declare `{target}` under `variables:` with the type {}",
                            def_type_name(self.project, variable)
                        ))
                    });
                self.value_error(&output_path, codes::HF047, format!("unknown variable `{target}`"), hint);
                ok = false;
                continue;
            };
            let receiver = &context.variables[index];
            let fits = receiver.collection == variable.collection
                && match (&receiver.ty, def_type(self.project, variable)) {
                    (VariableType::Scalar(to), VariableType::Scalar(from)) => {
                        *to == from || (*to == ExprType::Text && !receiver.collection)
                    }
                    (VariableType::Object(to), VariableType::Object(from))
                    | (VariableType::Record(to), VariableType::Record(from)) => {
                        to.eq_ignore_ascii_case(&from)
                    }
                    _ => false,
                };
            if !fits {
                self.value_error(
                    &output_path,
                    codes::HF047,
                    format!(
                        "`{}` is {}, so it cannot take `{name}` of `{called}`, which is {}",
                        receiver.name,
                        receiver.type_name(),
                        def_type_name(self.project, variable)
                    ),
                    Some(format!("store it in a variable of type {}", def_type_name(self.project, variable))),
                );
                ok = false;
                continue;
            }
            outputs.push((name.clone(), index));
        }
        ok.then(|| SubflowElement {
            flow: called.to_string(),
            inputs,
            outputs,
            child: std::sync::OnceLock::new(),
        })
    }

    /// Why `expr` cannot be the value of the called flow's input variable, judged as an assignment.
    fn input_problem(
        &self,
        variable: &VariableDef,
        expr: &ValueExpr,
        context: &FlowContext<'_>,
    ) -> Option<String> {
        let ty = def_type(self.project, variable);
        let target = match (&ty, variable.collection) {
            (_, true) => TargetType::Collection,
            (VariableType::Scalar(ty), false) => TargetType::Scalar(*ty),
            (VariableType::Object(_) | VariableType::Record(_), false) => TargetType::Object,
        };
        if let Some(problem) =
            check_assignment(&target, AssignOperator::Equals, expr, &self.table.slots.borrow(), context)
        {
            return Some(problem);
        }
        // A whole object variable must be of the same generated type.
        if let (VariableType::Object(wanted), ValueExpr::WholeVariable(index)) = (&ty, expr)
            && let VariableType::Object(given) = &context.variables[*index].ty
            && !given.eq_ignore_ascii_case(wanted)
        {
            return Some(format!("`{}` is {given}, not {wanted}", context.variables[*index].name));
        }
        None
    }
}

/// The subflow calls of the project, as (calling flow, element, called flow), in file order.
fn calls(project: &Project) -> Vec<(&str, &str, &str)> {
    let mut calls = Vec::new();
    for (flow, located) in &project.flows {
        for (element, def) in &located.def.elements {
            if let Some(called) = &def.subflow
                && project.flows.contains_key(called)
            {
                calls.push((flow.as_str(), element.as_str(), called.as_str()));
            }
        }
    }
    calls
}

/// Refuses subflow calls that loop (HF048, naming the cycle) or nest deeper than
/// [`MAX_SUBFLOW_DEPTH`] (HF049), each at the `subflow` key of the call that closes the loop or starts
/// the chain that is too deep.
pub(crate) fn check_graph(project: &Project, diagnostics: &mut Diagnostics) {
    let calls = calls(project);
    if calls.is_empty() {
        return;
    }
    let report =
        |diagnostics: &mut Diagnostics, flow: &str, element: &str, code, message: String, hint: &str| {
            let source = project.flows[flow].source;
            let path = YamlPath::root().key("elements").key(element).key("subflow");
            diagnostics.push(project.at_value(source, &path, None, code, message).hint(hint.to_string()));
        };

    // Depth-first over every flow; a call to a flow still on the stack closes a cycle.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnStack,
        Done,
    }
    let mut marks: HashMap<&str, Mark> = project.flows.keys().map(|f| (f.as_str(), Mark::New)).collect();
    let mut cyclic = false;
    for root in project.flows.keys() {
        if marks[root.as_str()] != Mark::New {
            continue;
        }
        // (flow, index of its next call to follow)
        let mut stack: Vec<(&str, usize)> = vec![(root.as_str(), 0)];
        marks.insert(root.as_str(), Mark::OnStack);
        while let Some((flow, next)) = stack.last().copied() {
            let Some(&(_, element, called)) = calls.iter().filter(|(from, _, _)| *from == flow).nth(next)
            else {
                marks.insert(flow, Mark::Done);
                stack.pop();
                continue;
            };
            if let Some(top) = stack.last_mut() {
                top.1 += 1;
            }
            match marks[called] {
                Mark::New => {
                    marks.insert(called, Mark::OnStack);
                    stack.push((called, 0));
                }
                Mark::OnStack => {
                    cyclic = true;
                    let start = stack.iter().position(|(f, _)| *f == called).unwrap_or(0);
                    let mut cycle: Vec<&str> = stack[start..].iter().map(|(f, _)| *f).collect();
                    cycle.push(called);
                    let message = if cycle.len() == 2 {
                        format!("flow `{flow}` calls itself as a subflow ({})", cycle.join(" → "))
                    } else {
                        format!("subflows call each other in a cycle: {}", cycle.join(" → "))
                    };
                    report(
                        diagnostics,
                        flow,
                        element,
                        codes::HF048,
                        message,
                        "a run would never end; move the shared steps into a flow that both call, or repeat with a Loop",
                    );
                }
                Mark::Done => {}
            }
        }
    }
    if cyclic {
        return;
    }

    // Without cycles: the longest chain of calls below each flow, and where it goes.
    fn depth<'a>(
        flow: &'a str,
        calls: &[(&'a str, &'a str, &'a str)],
        memo: &mut HashMap<&'a str, (usize, Option<&'a str>)>,
    ) -> usize {
        if let Some((d, _)) = memo.get(flow) {
            return *d;
        }
        let mut best = (0, None);
        for &(from, _, called) in calls {
            if from == flow {
                let d = 1 + depth(called, calls, memo);
                if d > best.0 {
                    best = (d, Some(called));
                }
            }
        }
        memo.insert(flow, best);
        best.0
    }
    let mut memo = HashMap::new();
    for &(flow, element, called) in &calls {
        let below = depth(called, &calls, &mut memo);
        if 1 + below > MAX_SUBFLOW_DEPTH && below <= MAX_SUBFLOW_DEPTH {
            let mut chain = vec![flow, called];
            while let Some((_, Some(next))) = memo.get(chain[chain.len() - 1]) {
                chain.push(next);
            }
            report(
                diagnostics,
                flow,
                element,
                codes::HF049,
                format!(
                    "subflows are nested {} levels deep here ({}); at most {MAX_SUBFLOW_DEPTH} are allowed",
                    1 + below,
                    chain.join(" → ")
                ),
                "call fewer levels deep: merge small subflows into their caller",
            );
        }
    }
}

/// Links every Subflow element to the compiled flow it calls.
pub(crate) fn link(flows: &IndexMap<String, Arc<CompiledFlow>>) {
    for flow in flows.values() {
        for element in &flow.elements {
            if let ElementKind::Subflow(call) = &element.kind
                && let Some(child) = flows.get(&call.flow)
            {
                let _ = call.child.set(Arc::clone(child));
            }
        }
    }
}
