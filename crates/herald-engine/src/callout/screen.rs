//! Stage 5 of a callout: what is checked before anything is sent. The body against the operation's
//! schema (external services), then each message it carries: a destination that can be a phone number
//! (rewritten in E.164), a text the provider takes, and a phone that did not opt out.

use crate::Engine;
use herald_flow::PreparedCallout;
use herald_providers::OutboundMessage;

/// What a send will carry after screening: the messages that go out and the ones left out of a batch.
#[derive(Default)]
pub(crate) struct Screened {
    pub(crate) messages: Vec<OutboundMessage>,
    pub(crate) left_out: Vec<LeftOut>,
}

pub(crate) struct LeftOut {
    pub(crate) destination: String,
    pub(crate) problem: String,
}

impl Engine {
    /// The messages a prepared send carries, with destinations in E.164, checked before anything is
    /// sent: a destination that cannot be a phone number, a text 8x8 would refuse, or a phone that
    /// opted out. A single message with such a problem refuses the send. A batch goes out without
    /// the messages that have one (they are listed in `left_out`), so one opted-out member does not
    /// stop a campaign; a batch left with no message is refused.
    pub(crate) fn outbound_messages(&self, prepared: &mut PreparedCallout) -> Result<Screened, String> {
        let Some(body) = &prepared.body else { return Ok(Screened::default()) };
        let messages = prepared.provider.outbound_messages(prepared.method.as_str(), &prepared.path, body);
        let batch = messages.len() > 1;
        let mut kept = Vec::with_capacity(messages.len());
        let mut kept_positions = Vec::with_capacity(messages.len());
        let mut left_out = Vec::new();
        for (position, mut message) in messages.into_iter().enumerate() {
            match self.screen(prepared, &mut message) {
                Ok(()) => {
                    kept.push(message);
                    kept_positions.push(position);
                }
                Err(problem) if batch => left_out.push(LeftOut { destination: message.destination, problem }),
                Err(problem) => return Err(format!("{} was not sent: {problem}", prepared.action)),
            }
        }
        if batch && kept.is_empty() {
            let first = left_out.first().map(|l| l.problem.as_str()).unwrap_or_default();
            return Err(format!(
                "{} was not sent: none of its {} messages can go out (the first: {first})",
                prepared.action,
                left_out.len()
            ));
        }
        if let Some(body) = &mut prepared.body {
            if batch {
                prepared.provider.rewrite_batch(body, &kept, &kept_positions);
            } else if let [message] = kept.as_slice() {
                prepared.provider.rewrite_single(body, message);
            }
        }
        Ok(Screened { messages: kept, left_out })
    }

    /// Normalizes one message's destination to E.164 and says why it cannot be sent, if it cannot.
    fn screen(&self, prepared: &PreparedCallout, message: &mut OutboundMessage) -> Result<(), String> {
        let project = self.project();
        let country = project.project.config.runtime.default_country.as_deref();
        let provider = prepared.provider;
        if provider.destination_is_phone(message) {
            match herald_sms::normalize_e164(&message.destination, country) {
                Ok(e164) => message.destination = e164,
                Err(error) => {
                    return Err(format!(
                        "the destination `{}` is not a phone number that can receive messages: {error}",
                        message.destination
                    ));
                }
            }
        }
        if let Some(max_parts) = provider.max_parts()
            && let Some(text) = &message.text
            && let Some(problem) = herald_sms::part_limit_error(&herald_sms::inspect(text), max_parts)
        {
            // The provider would refuse it: say why before spending the round trip.
            return Err(format!("the {problem}"));
        }
        if let Some(sender) = self.inner.consent.blocking(&message.destination, message.sender.as_deref()) {
            let of = if sender.is_empty() { String::new() } else { format!(" of {sender}") };
            return Err(format!(
                "{} opted out{of} (a STOP reply); herald does not text a phone that opted out. It can opt back in by replying START",
                message.destination
            ));
        }
        Ok(())
    }

    /// Checks the body against the operation's schema (external services); nothing invalid is sent.
    pub(crate) fn schema_problems(&self, prepared: &PreparedCallout) -> Option<String> {
        let body = prepared.body.as_ref()?;
        let project = self.project();
        let service = project.project.services.get(&prepared.service)?;
        let problems = herald_openapi::validate_request(&service.def.model, &prepared.operation, body);
        if problems.is_empty() {
            return None;
        }
        let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
        Some(format!(
            "{} was not sent: the request does not match the spec: {}",
            prepared.action,
            listed.join("; ")
        ))
    }
}
