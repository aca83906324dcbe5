//! Compile and evaluation times of a typical entry condition and message template.

use std::hint::black_box;

use chrono::{TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use herald_expr::{EvalContext, Formula, RefId, Resolved, Resolver, Scope, Template, Type, Value};

struct Lead {
    phone: Value,
    first_name: Value,
}

impl Resolver for Lead {
    fn resolve(&self, path: &[&str]) -> Result<Resolved, String> {
        match path {
            ["$Record", "Phone"] => Ok(Resolved { id: RefId(0), ty: Type::Text }),
            ["$Record", "FirstName"] => Ok(Resolved { id: RefId(1), ty: Type::Text }),
            _ => Err(format!("Unknown reference {}", path.join("."))),
        }
    }
}

impl Scope for Lead {
    fn value(&self, id: RefId) -> Value {
        match id.0 {
            0 => self.phone.clone(),
            1 => self.first_name.clone(),
            _ => Value::Null,
        }
    }
}

const CONDITION: &str = "NOT(ISBLANK({!$Record.Phone}))";
const MESSAGE: &str = "Hi {!$Record.FirstName}, thanks for reaching out! Reply STOP to opt out.";

fn benches(c: &mut Criterion) {
    let lead = Lead { phone: Value::text("+15551234567"), first_name: Value::text("Ada") };
    let cx = EvalContext::new(Utc.with_ymd_and_hms(2024, 3, 5, 14, 30, 0).unwrap());

    c.bench_function("compile entry condition", |b| {
        b.iter(|| Formula::compile(black_box(CONDITION), &lead).unwrap())
    });
    let condition = Formula::compile(CONDITION, &lead).unwrap();
    c.bench_function("eval entry condition", |b| b.iter(|| condition.eval(black_box(&lead), &cx).unwrap()));

    c.bench_function("compile message template", |b| {
        b.iter(|| Template::compile(black_box(MESSAGE), &lead).unwrap())
    });
    let message = Template::compile(MESSAGE, &lead).unwrap();
    c.bench_function("render message template", |b| {
        b.iter(|| message.render(black_box(&lead), &cx).unwrap())
    });
}

criterion_group!(expr, benches);
criterion_main!(expr);
