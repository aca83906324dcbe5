//! Running a Subflow element. The called flow runs as a frame inside the caller's [`RunState`]
//! (`state.subflow`, nested as deep as the calls), so the whole run is still one serialisable value:
//! the driver journals it, resumes it after a crash and retries its callouts exactly as in the caller.
//! Every public step of the interpreter first hands itself to the innermost frame; the frame's trace
//! entries go into the run's one trace, marked with the subflow's name. When the subflow ends, its
//! output variables are copied into the caller's variables and the caller goes on; a failure no fault
//! connector of the subflow caught becomes a fault of the Subflow element, as in Salesforce.

use crate::flow::*;
use crate::runtime::{Step, input_value, push_trace, trace_entry, trace_value};
use crate::{RunState, TraceEntry};
use chrono::{DateTime, Utc};
use herald_expr::EvalContext;
use serde_json::{Map, Value as Json};

impl CompiledFlow {
    /// The compiled flow the current Subflow element calls, while its frame runs.
    pub(crate) fn running_subflow(&self, state: &RunState) -> Option<&CompiledFlow> {
        state.subflow.as_ref()?;
        let element = self.element(state.cursor.as_deref()?)?;
        match &element.kind {
            ElementKind::Subflow(call) => call.child.get().map(|child| &**child),
            _ => None,
        }
    }

    /// Runs `step` on the innermost subflow frame when one is running (`None` otherwise), with the
    /// run's trace lent to it so its entries land in order, each marked with the subflow's name.
    pub(crate) fn in_subflow<R>(
        &self,
        state: &mut RunState,
        step: impl FnOnce(&CompiledFlow, &mut RunState) -> R,
    ) -> Option<R> {
        let flow = self.running_subflow(state)?;
        let child = state.subflow.as_deref_mut()?;
        std::mem::swap(&mut state.trace, &mut child.trace);
        std::mem::swap(&mut state.trace_omitted, &mut child.trace_omitted);
        let before = child.trace.len();
        let result = step(flow, child);
        for entry in child.trace.iter_mut().skip(before) {
            entry.flow.get_or_insert_with(|| flow.name.clone());
        }
        std::mem::swap(&mut state.trace, &mut child.trace);
        std::mem::swap(&mut state.trace_omitted, &mut child.trace_omitted);
        Some(result)
    }

    /// [`Self::in_subflow`] for a step that takes `value`; gives it back when no subflow runs.
    pub(crate) fn in_subflow_with<T>(
        &self,
        state: &mut RunState,
        value: T,
        step: impl FnOnce(&CompiledFlow, &mut RunState, T),
    ) -> Result<(), T> {
        let mut value = Some(value);
        self.in_subflow(state, |flow, child| {
            if let Some(value) = value.take() {
                step(flow, child, value);
            }
        });
        // Taken when the step ran; still here when no subflow runs.
        match value {
            Some(value) => Err(value),
            None => Ok(()),
        }
    }

    /// A Subflow element starts: its inputs are computed in this flow and checked against the called
    /// flow's variables, and the called flow's frame is pushed. A value the subflow cannot take is a
    /// fault of the element.
    pub(crate) fn enter_subflow(
        &self,
        state: &mut RunState,
        element: &Element,
        call: &SubflowElement,
        cx: &EvalContext,
    ) {
        let Some(child_flow) = call.child.get() else {
            let message = format!("{}: the subflow {} is not loaded", element.name, call.flow);
            self.end_subflow(state, element, Json::Null, Err(message), cx.now);
            return;
        };
        let mut inputs = Map::new();
        for (name, expr) in &call.inputs {
            let value = {
                let scope = self.scope(state, None, cx);
                self.eval_value(expr, &scope, state, cx)
            };
            match value {
                Ok(value) => {
                    let variable = child_flow.variables.iter().find(|v| v.name == *name);
                    inputs.insert(name.clone(), text_if_text(variable, value));
                }
                Err(message) => {
                    let message = format!("{}: input `{name}`: {message}", element.name);
                    self.end_subflow(state, element, Json::Object(inputs), Err(message), cx.now);
                    return;
                }
            }
        }
        let id = frame_interview_id(&state.interview_id, &element.name, state.steps, state.generation);
        match child_flow.new_autolaunched_run(&inputs, state.user.clone(), id, cx.now) {
            Ok(mut child) => {
                child.generation = state.generation;
                // Always listed, as effects are: it tells whose elements follow.
                let mut entry = trace_entry(element, "Subflow", shown(&inputs), Json::Null, cx.now, 0);
                entry.result = format!("subflow: {}", call.flow);
                state.trace.push(entry);
                state.subflow = Some(Box::new(child));
            }
            Err(message) => {
                let message =
                    format!("{}: subflow {}: {}", element.name, call.flow, message.replace('\n', "; "));
                self.end_subflow(state, element, shown(&inputs), Err(message), cx.now);
            }
        }
    }

    /// Moves the running subflow on. `Some` is the step to hand the driver (an effect inside the
    /// subflow, or the run's failure); `None` means the subflow ended and this flow goes on.
    pub(crate) fn advance_subflow(&self, state: &mut RunState, cx: &EvalContext) -> Option<Step> {
        let Some(step) = self.in_subflow(state, |flow, child| flow.advance(child, cx)) else {
            let at = state.cursor.clone().unwrap_or_default();
            return Some(
                self.fail(state, format!("element `{at}` no longer calls a subflow in flow {}", self.name)),
            );
        };
        if let Step::Effect(effect) = step {
            return Some(Step::Effect(effect));
        }
        let child = state.subflow.take()?;
        let element = self.element(state.cursor.as_deref().unwrap_or_default())?;
        let ElementKind::Subflow(call) = &element.kind else { return None };
        let outcome = match step {
            Step::Failed { message } => Err(format!("subflow {} failed: {message}", call.flow)),
            _ => self.take_outputs(state, call, &child),
        };
        self.end_subflow(state, element, Json::Null, outcome, cx.now);
        state.failure.as_ref().map(|message| Step::Failed { message: message.clone() })
    }

    /// Copies the subflow's output variables into this flow's, as the element maps them; the trace
    /// shows them under the subflow's names.
    fn take_outputs(
        &self,
        state: &mut RunState,
        call: &SubflowElement,
        child: &RunState,
    ) -> Result<Json, String> {
        let child_flow =
            call.child.get().ok_or_else(|| format!("the subflow {} is not loaded", call.flow))?;
        let mut shown = Map::new();
        for (name, target) in &call.outputs {
            let value = child_flow
                .variables
                .iter()
                .position(|v| v.name == *name)
                .and_then(|index| child.variables.get(index))
                .cloned()
                .unwrap_or(Json::Null);
            let variable = &self.variables[*target];
            let value = input_value(variable, &text_if_text(Some(variable), value))
                .map_err(|error| format!("output `{name}` into `{}`: {error}", variable.name))?;
            shown.insert(name.clone(), trace_value(&value));
            state.variables[*target] = value;
        }
        Ok(Json::Object(shown))
    }

    /// The Subflow element is done: on success to `next`; on a fault its fault connector, or the run
    /// fails. The entry closes the subflow's entries in the trace.
    fn end_subflow(
        &self,
        state: &mut RunState,
        element: &Element,
        inputs: Json,
        outcome: Result<Json, String>,
        now: DateTime<Utc>,
    ) {
        match outcome {
            Ok(outputs) => {
                state.cursor = element.next.map(|n| self.elements[n].name.clone());
                push_trace(state, element, "Subflow", inputs, outputs, now, 0);
            }
            Err(fault) => {
                state.fault_message = Some(fault.clone());
                let mut entry: TraceEntry = trace_entry(element, "Subflow", inputs, Json::Null, now, 0);
                match element.fault {
                    Some(target) => {
                        let target = self.elements[target].name.clone();
                        entry.result = format!("fault: {target}");
                        state.cursor = Some(target);
                    }
                    None => {
                        entry.result = "failed".into();
                        state.cursor = None;
                        state.failure = Some(fault.clone());
                    }
                }
                entry.fault = Some(fault);
                state.trace.push(entry);
            }
        }
    }
}

/// The interview id of a subflow's frame: a GUID derived from the caller's, the element and the step,
/// so each call (a subflow called in a loop, again after a retry) has its own, and so its own
/// idempotency keys, while a resend of the same attempt after a crash keeps them.
fn frame_interview_id(parent: &str, element: &str, step: u32, generation: u32) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{parent}/{element}/{step}/{generation}").as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// A Number or Boolean going into a single Text variable, as text: an Assignment would turn it into
/// text, and the load-time check allows it on the same terms.
fn text_if_text(variable: Option<&Variable>, value: Json) -> Json {
    match (variable, value) {
        (Some(v), Json::Number(n)) if is_single_text(v) => Json::String(n.to_string()),
        (Some(v), Json::Bool(b)) if is_single_text(v) => Json::String(b.to_string()),
        (_, value) => value,
    }
}

fn is_single_text(variable: &Variable) -> bool {
    !variable.collection && variable.ty == VariableType::Scalar(herald_expr::Type::Text)
}

fn shown(inputs: &Map<String, Json>) -> Json {
    Json::Object(inputs.iter().map(|(k, v)| (k.clone(), trace_value(v))).collect())
}
