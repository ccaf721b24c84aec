//! Wire facts of the generated protocol code that OpenTofu/Terraform depend on. Field numbers
//! are checked on encoded bytes (a renumbered field compiles fine but is silently dropped by
//! the client); field names are checked by the struct literals compiling at all.

use atmos_provider::protocol::proto::{plugin, tfplugin6 as tf};
use prost::Message;
use prost::bytes::Buf;
use prost::encoding::{WireType, decode_key, decode_varint};

/// Field numbers and wire types of the top-level fields in an encoded message, in order.
fn fields(mut buf: &[u8]) -> Vec<(u32, WireType)> {
    let mut out = Vec::new();
    while buf.has_remaining() {
        let (number, wire) = decode_key(&mut buf).expect("valid key");
        match wire {
            WireType::Varint => {
                decode_varint(&mut buf).expect("varint");
            }
            WireType::LengthDelimited => {
                let len = decode_varint(&mut buf).expect("length") as usize;
                buf.advance(len);
            }
            WireType::SixtyFourBit => buf.advance(8),
            WireType::ThirtyTwoBit => buf.advance(4),
            other => panic!("unexpected wire type {other:?}"),
        }
        out.push((number, wire));
    }
    out
}

fn error_diag() -> tf::Diagnostic {
    tf::Diagnostic {
        severity: tf::diagnostic::Severity::Error as i32,
        summary: "bad".into(),
        ..Default::default()
    }
}

#[test]
fn provider_schema_server_capabilities_is_field_6() {
    let resp = tf::get_provider_schema::Response {
        server_capabilities: Some(tf::ServerCapabilities {
            plan_destroy: true,
            ..Default::default()
        }),
        ..Default::default()
    };
    let bytes = resp.encode_to_vec();
    // Tag 6 (length-delimited) = 0x32, then the nested message {plan_destroy(1) = true}.
    assert_eq!(bytes, [0x32, 0x02, 0x08, 0x01]);
}

#[test]
fn provider_schema_maps_keep_their_numbers() {
    let schema = tf::Schema::default();
    let resp = tf::get_provider_schema::Response {
        provider: Some(schema.clone()),
        resource_schemas: [("a_r".to_string(), schema.clone())].into(),
        data_source_schemas: [("a_d".to_string(), schema.clone())].into(),
        diagnostics: vec![error_diag()],
        provider_meta: Some(schema.clone()),
        functions: [("f".to_string(), tf::Function::default())].into(),
        ephemeral_resource_schemas: [("a_e".to_string(), schema.clone())].into(),
        list_resource_schemas: [("a_l".to_string(), schema.clone())].into(),
        state_store_schemas: [("a_s".to_string(), schema.clone())].into(),
        action_schemas: [(
            "a_a".to_string(),
            tf::ActionSchema {
                schema: Some(schema),
            },
        )]
        .into(),
        ..Default::default()
    };
    let mut numbers: Vec<u32> = fields(&resp.encode_to_vec()).iter().map(|f| f.0).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, [1, 2, 3, 4, 5, 7, 8, 9, 10, 11]);
}

#[test]
fn validate_provider_config_diagnostics_is_field_2() {
    let resp = tf::validate_provider_config::Response {
        diagnostics: vec![error_diag()],
    };
    assert_eq!(
        fields(&resp.encode_to_vec()),
        [(2, WireType::LengthDelimited)]
    );
    // Whereas the other Validate* responses use field 1.
    let other = tf::validate_resource_config::Response {
        diagnostics: vec![error_diag()],
    };
    assert_eq!(
        fields(&other.encode_to_vec()),
        [(1, WireType::LengthDelimited)]
    );
}

#[test]
fn attribute_write_only_is_field_11_and_deprecation_message_12() {
    let attr = tf::schema::Attribute {
        write_only: true,
        deprecated: true,
        deprecation_message: "use x".into(),
        ..Default::default()
    };
    assert_eq!(
        fields(&attr.encode_to_vec()),
        [
            (9, WireType::Varint),
            (11, WireType::Varint),
            (12, WireType::LengthDelimited)
        ]
    );
    let only_write_only = tf::schema::Attribute {
        write_only: true,
        ..Default::default()
    };
    // Tag 11 varint = (11 << 3) | 0 = 0x58.
    assert_eq!(only_write_only.encode_to_vec(), [0x58, 0x01]);
}

#[test]
fn attribute_nested_type_is_field_10() {
    let attr = tf::schema::Attribute {
        nested_type: Some(tf::schema::Object {
            nesting: tf::schema::object::NestingMode::Single as i32,
            ..Default::default()
        }),
        ..Default::default()
    };
    // Object.nesting is field 3 (there is no field 2).
    assert_eq!(attr.encode_to_vec(), [0x52, 0x02, 0x18, 0x01]);
}

#[test]
fn block_deprecation_message_is_field_7() {
    let block = tf::schema::Block {
        deprecation_message: "m".into(),
        ..Default::default()
    };
    assert_eq!(block.encode_to_vec(), [0x3a, 0x01, b'm']);
}

#[test]
fn stop_provider_error_is_field_1() {
    let resp = tf::stop_provider::Response { error: "x".into() };
    assert_eq!(resp.encode_to_vec(), [0x0a, 0x01, b'x']);
}

#[test]
fn open_ephemeral_resource_fields() {
    let resp = tf::open_ephemeral_resource::Response {
        diagnostics: vec![error_diag()],
        renew_at: Some(prost_types::Timestamp {
            seconds: 1,
            nanos: 0,
        }),
        result: Some(tf::DynamicValue {
            msgpack: vec![0xc0],
            json: Vec::new(),
        }),
        private: Some(Vec::new()),
        deferred: Some(tf::Deferred {
            reason: tf::deferred::Reason::AbsentPrereq as i32,
        }),
    };
    let numbers: Vec<u32> = fields(&resp.encode_to_vec()).iter().map(|f| f.0).collect();
    // `private` is proto3 `optional`, so even an empty value is sent.
    assert_eq!(numbers, [1, 2, 3, 4, 5]);
    let only_result = tf::open_ephemeral_resource::Response {
        result: Some(tf::DynamicValue {
            msgpack: vec![0xc0],
            json: Vec::new(),
        }),
        ..Default::default()
    };
    // Tag 3 = 0x1a; DynamicValue.msgpack is field 1 (0x0a).
    assert_eq!(only_result.encode_to_vec(), [0x1a, 0x03, 0x0a, 0x01, 0xc0]);
}

#[test]
fn client_capabilities_decode_from_client_bytes() {
    // What a client sends with only write_only_attributes_allowed = true.
    let caps = tf::ClientCapabilities::decode(&[0x10, 0x01][..]).expect("decodes");
    assert!(caps.write_only_attributes_allowed);
    assert!(!caps.deferral_allowed);
    let caps = tf::ClientCapabilities::decode(&[0x08, 0x01][..]).expect("decodes");
    assert!(caps.deferral_allowed);
    assert!(!caps.write_only_attributes_allowed);
}

#[test]
fn client_capabilities_reach_the_requests_that_carry_them() {
    let caps = Some(tf::ClientCapabilities {
        write_only_attributes_allowed: true,
        ..Default::default()
    });
    let numbers = |b: Vec<u8>| fields(&b).iter().map(|f| f.0).collect::<Vec<_>>();
    let v = tf::validate_resource_config::Request {
        client_capabilities: caps,
        ..Default::default()
    };
    assert_eq!(numbers(v.encode_to_vec()), [3]);
    let p = tf::plan_resource_change::Request {
        client_capabilities: caps,
        ..Default::default()
    };
    assert_eq!(numbers(p.encode_to_vec()), [7]);
    let r = tf::read_data_source::Request {
        client_capabilities: caps,
        ..Default::default()
    };
    assert_eq!(numbers(r.encode_to_vec()), [4]);
    let c = tf::configure_provider::Request {
        client_capabilities: caps,
        ..Default::default()
    };
    assert_eq!(numbers(c.encode_to_vec()), [3]);
}

#[test]
fn diagnostic_and_attribute_path_layout() {
    let diag = tf::Diagnostic {
        severity: tf::diagnostic::Severity::Warning as i32,
        summary: "s".into(),
        detail: "d".into(),
        attribute: Some(tf::AttributePath {
            steps: vec![tf::attribute_path::Step {
                selector: Some(tf::attribute_path::step::Selector::ElementKeyInt(2)),
            }],
        }),
    };
    assert_eq!(
        diag.encode_to_vec(),
        [
            0x08, 0x02, // severity = WARNING (2)
            0x12, 0x01, b's', // summary
            0x1a, 0x01, b'd', // detail
            0x22, 0x04, 0x0a, 0x02, 0x18, 0x02, // attribute.steps[0].element_key_int = 2
        ]
    );
}

#[test]
fn list_resource_event_diagnostic_is_field_4() {
    let event = tf::list_resource::Event {
        diagnostic: vec![error_diag()],
        ..Default::default()
    };
    assert_eq!(
        fields(&event.encode_to_vec()),
        [(4, WireType::LengthDelimited)]
    );
}

#[test]
fn service_names_match_the_clients() {
    assert_eq!(tf::provider_server::SERVICE_NAME, "tfplugin6.Provider");
    assert_eq!(
        plugin::grpc_controller_server::SERVICE_NAME,
        "plugin.GRPCController"
    );
    assert_eq!(plugin::grpc_stdio_server::SERVICE_NAME, "plugin.GRPCStdio");
    assert_eq!(
        plugin::grpc_broker_server::SERVICE_NAME,
        "plugin.GRPCBroker"
    );
}

#[test]
fn go_plugin_messages() {
    let data = plugin::StdioData {
        channel: plugin::stdio_data::Channel::Stderr as i32,
        data: b"x".to_vec(),
    };
    assert_eq!(data.encode_to_vec(), [0x08, 0x02, 0x12, 0x01, b'x']);

    let info = plugin::ConnInfo {
        service_id: 7,
        network: "unix".into(),
        address: "/s".into(),
        knock: Some(plugin::conn_info::Knock {
            knock: true,
            ack: false,
            error: "e".into(),
        }),
    };
    let numbers: Vec<u32> = fields(&info.encode_to_vec()).iter().map(|f| f.0).collect();
    assert_eq!(numbers, [1, 2, 3, 4]);
    let knock = plugin::conn_info::Knock {
        knock: false,
        ack: true,
        error: "e".into(),
    };
    assert_eq!(knock.encode_to_vec(), [0x10, 0x01, 0x1a, 0x01, b'e']);

    // go-plugin's own Empty encodes to nothing, like google.protobuf.Empty.
    assert!(plugin::Empty {}.encode_to_vec().is_empty());
}

/// A provider that implements no RPC at all: every call must answer `Unimplemented`, which is
/// what clients expect from RPCs a provider does not offer (e.g. GetResourceIdentitySchemas).
struct NoRpcs;

impl tf::provider_server::Provider for NoRpcs {}

#[tokio::test]
async fn unimplemented_rpcs_answer_unimplemented() {
    use tf::provider_server::Provider;
    let status = NoRpcs
        .get_resource_identity_schemas(tonic::Request::new(
            tf::get_resource_identity_schemas::Request {},
        ))
        .await
        .expect_err("no implementation");
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    let status = NoRpcs
        .list_resource(tonic::Request::new(tf::list_resource::Request::default()))
        .await
        .err()
        .expect("no implementation");
    assert_eq!(status.code(), tonic::Code::Unimplemented);
}
