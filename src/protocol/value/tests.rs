//! Properties of the codec as a whole: random types and values of those types survive a round
//! trip through msgpack (and JSON, when they hold no unknowns), and no input panics a decoder.

use std::collections::BTreeMap;

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;

use super::*;

fn arb_type() -> impl Strategy<Value = Type> {
    arb_type_of(true)
}

fn arb_type_of(with_dynamic: bool) -> impl Strategy<Value = Type> {
    let mut leaves = vec![Just(Type::Bool), Just(Type::Number), Just(Type::String)];
    if with_dynamic {
        leaves.push(Just(Type::Dynamic));
    }
    proptest::strategy::Union::new(leaves).prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|t| Type::List(Box::new(t))),
            inner.clone().prop_map(|t| Type::Set(Box::new(t))),
            inner.clone().prop_map(|t| Type::Map(Box::new(t))),
            btree_map("[a-z_]{1,6}", inner.clone(), 0..4).prop_map(Type::Object),
            vec(inner, 0..4).prop_map(Type::Tuple),
        ]
    })
}

/// Which values a generator may produce: JSON has neither unknowns nor infinities.
#[derive(Clone, Copy)]
enum Form {
    Msgpack,
    Json,
}

fn arb_number(form: Form) -> BoxedStrategy<Number> {
    let floats = any::<f64>().prop_filter_map("NaN and, for JSON, infinity", move |f| match form {
        Form::Json if f.is_infinite() => None,
        _ => Number::from_f64(f),
    });
    prop_oneof![
        any::<i64>().prop_map(Number::Int),
        floats,
        "-?[1-9][0-9]{18,40}".prop_filter_map("number text", |t| Number::parse(&t)),
        "-?[0-9]{1,5}\\.[0-9]{1,25}".prop_filter_map("number text", |t| Number::parse(&t)),
    ]
    .boxed()
}

fn arb_unknown(ty: &Type) -> BoxedStrategy<Unknown> {
    let not_null = any::<bool>();
    match ty {
        Type::Dynamic => Just(Unknown::default()).boxed(),
        Type::String => (not_null, proptest::option::of("\\PC{1,10}"))
            .prop_map(|(not_null, string_prefix)| Unknown {
                not_null,
                string_prefix,
                ..Unknown::default()
            })
            .boxed(),
        Type::Number => {
            let bound = || proptest::option::of((arb_number(Form::Msgpack), any::<bool>()));
            (not_null, bound(), bound())
                .prop_map(|(not_null, number_lower, number_upper)| Unknown {
                    not_null,
                    number_lower,
                    number_upper,
                    ..Unknown::default()
                })
                .boxed()
        }
        Type::List(_) | Type::Set(_) | Type::Map(_) => {
            let bound = || proptest::option::of(any::<u64>());
            (not_null, bound(), bound())
                .prop_map(|(not_null, length_lower, length_upper)| Unknown {
                    not_null,
                    length_lower,
                    length_upper,
                    ..Unknown::default()
                })
                .boxed()
        }
        _ => not_null
            .prop_map(|not_null| Unknown {
                not_null,
                ..Unknown::default()
            })
            .boxed(),
    }
}

/// A value of type `ty`: null, unknown (msgpack only), or known, nested to at most `depth`
/// dynamic levels.
fn arb_value(ty: &Type, form: Form, depth: u32) -> BoxedStrategy<Value> {
    let known = arb_known(ty, form, depth);
    match form {
        Form::Msgpack => prop_oneof![
            1 => Just(Value::Null),
            1 => arb_unknown(ty).prop_map(Value::Unknown),
            6 => known,
        ]
        .boxed(),
        Form::Json => prop_oneof![1 => Just(Value::Null), 6 => known].boxed(),
    }
}

fn arb_known(ty: &Type, form: Form, depth: u32) -> BoxedStrategy<Value> {
    let elems = |ety: &Type| vec(arb_value(ety, form, depth), 0..4);
    match ty {
        Type::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        Type::Number => arb_number(form).prop_map(Value::Number).boxed(),
        Type::String => "\\PC{0,12}".prop_map(Value::String).boxed(),
        Type::List(ety) => elems(ety).prop_map(Value::List).boxed(),
        Type::Set(ety) => elems(ety).prop_map(Value::Set).boxed(),
        Type::Map(ety) => btree_map("\\PC{0,5}", arb_value(ety, form, depth), 0..4)
            .prop_map(Value::Map)
            .boxed(),
        Type::Tuple(etys) => etys
            .iter()
            .map(|t| arb_value(t, form, depth))
            .collect::<Vec<_>>()
            .prop_map(Value::Tuple)
            .boxed(),
        Type::Object(atys) => atys
            .iter()
            .map(|(name, t)| (Just(name.clone()), arb_value(t, form, depth)))
            .collect::<Vec<_>>()
            .prop_map(|attrs| Value::Object(attrs.into_iter().collect::<BTreeMap<_, _>>()))
            .boxed(),
        Type::Dynamic => {
            // At depth 0, no further dynamic levels.
            arb_type_of(depth > 0)
                .prop_filter("concrete type", |t| *t != Type::Dynamic)
                .prop_flat_map(move |t| {
                    arb_value(&t, form, depth.saturating_sub(1))
                        .prop_map(move |v| Value::Dynamic(t.clone(), Box::new(v)))
                })
                .boxed()
        }
    }
}

fn typed_value(form: Form) -> impl Strategy<Value = (Type, Value)> {
    arb_type().prop_flat_map(move |t| (Just(t.clone()), arb_value(&t, form, 2)))
}

/// A few types that exercise every decoder branch on arbitrary bytes.
fn probe_types() -> Vec<Type> {
    vec![
        Type::Dynamic,
        Type::Number,
        Type::String,
        Type::Object(
            [
                ("a".to_owned(), Type::List(Box::new(Type::Number))),
                ("b".to_owned(), Type::Map(Box::new(Type::Dynamic))),
            ]
            .into(),
        ),
        Type::Tuple(vec![Type::Bool, Type::Set(Box::new(Type::String))]),
    ]
}

proptest! {
    #[test]
    fn msgpack_round_trips((ty, value) in typed_value(Form::Msgpack)) {
        let bytes = encode_msgpack(&value, &ty).unwrap();
        prop_assert_eq!(decode_msgpack(&bytes, &ty).unwrap(), value);
    }

    #[test]
    fn json_round_trips((ty, value) in typed_value(Form::Json)) {
        let bytes = encode_json(&value, &ty).unwrap();
        prop_assert_eq!(decode_json(&bytes, &ty).unwrap(), value.clone());
        prop_assert_eq!(decode_json_state(&bytes, &ty).unwrap(), value);
    }

    #[test]
    fn types_round_trip_through_json(ty in arb_type()) {
        prop_assert_eq!(Type::from_json(&ty.to_json()).unwrap(), ty);
    }

    #[test]
    fn numbers_round_trip_through_decimal_text(n in arb_number(Form::Json)) {
        let text = n.to_decimal_text().unwrap();
        prop_assert_eq!(Number::parse(&text), Some(n));
    }

    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..256)) {
        for ty in probe_types() {
            let _ = decode_msgpack(&bytes, &ty);
            let _ = decode_json(&bytes, &ty);
            let _ = Type::from_json(&bytes);
        }
    }

    #[test]
    fn damaged_encodings_never_panic(
        (ty, value) in typed_value(Form::Msgpack),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let bytes = encode_msgpack(&value, &ty).unwrap();
        let _ = decode_msgpack(&bytes[..cut.index(bytes.len() + 1)], &ty);
        let mut flipped = bytes.clone();
        let at = flip.index(flipped.len());
        flipped[at] = byte;
        let _ = decode_msgpack(&flipped, &ty);
    }
}

#[test]
fn dynamic_value_prefers_msgpack_then_json() {
    let ty = Type::String;
    let from_msgpack = decode_dynamic_value(b"\xa1m", b"\"j\"", &ty).unwrap();
    assert_eq!(from_msgpack, Value::String("m".to_owned()));
    let from_json = decode_dynamic_value(b"", b"\"j\"", &ty).unwrap();
    assert_eq!(from_json, Value::String("j".to_owned()));
    let e = decode_dynamic_value(b"", b"", &ty).unwrap_err();
    assert_eq!(e.message, "empty DynamicValue");
}
