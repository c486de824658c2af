//! The X-Ray trace an invocation runs in, parsed once: the header Lambda hands each
//! invocation (`Context::xray_trace_id`), which the enqueue passes on as the SQS
//! message's `AWSTraceHeader` so the worker's span joins the sender's trace, and its
//! `Root`, the `trace_id` field of every log line about a prediction.

use std::fmt;

/// The SQS message system attribute that carries a sender's trace to its consumer, and
/// the name Lambda gives it in an SQS record's `attributes`.
pub const AWS_TRACE_HEADER: &str = "AWSTraceHeader";

/// A trace header, `Root=1-<8 hex>-<24 hex>[;Parent=<16 hex>][;Sampled=0|1]`, kept as
/// those three fields only: SQS refuses a malformed `AWSTraceHeader` and fails the whole
/// send, so nothing else (`Lineage`, fields X-Ray may add later) is passed on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceHeader {
    root: String,
    parent: Option<String>,
    sampled: Option<bool>,
}

impl TraceHeader {
    /// The header, or `None` when it holds no well-formed `Root`: a missing or broken
    /// trace never fails the work it would only have described.
    pub fn parse(header: &str) -> Option<Self> {
        let (mut root, mut parent, mut sampled) = (None, None, None);
        for field in header.split(';') {
            let Some((key, value)) = field.trim().split_once('=') else { continue };
            match key {
                "Root" if is_root(value) => root = Some(value.to_owned()),
                "Parent" if is_hex(value, 16) => parent = Some(value.to_owned()),
                "Sampled" if value == "0" || value == "1" => sampled = Some(value == "1"),
                _ => {}
            }
        }
        Some(Self { root: root?, parent, sampled })
    }

    /// The `Root`, the trace's ID: what the logs' `trace_id` field holds.
    pub fn root(&self) -> &str {
        &self.root
    }
}

/// The header as X-Ray writes it, which is what `AWSTraceHeader` takes.
impl fmt::Display for TraceHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Root={}", self.root)?;
        if let Some(parent) = &self.parent {
            write!(f, ";Parent={parent}")?;
        }
        if let Some(sampled) = self.sampled {
            write!(f, ";Sampled={}", u8::from(sampled))?;
        }
        Ok(())
    }
}

/// `1-<8 hex: the epoch seconds>-<24 hex>`.
fn is_root(value: &str) -> bool {
    let mut parts = value.split('-');
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some("1"), Some(time), Some(id), None) if is_hex(time, 8) && is_hex(id, 24)
    )
}

fn is_hex(value: &str, len: usize) -> bool {
    value.len() == len && value.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAMBDA: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

    #[test]
    fn the_header_lambda_hands_an_invocation_reads_back_as_it_came() {
        let trace = TraceHeader::parse(LAMBDA).unwrap();
        assert_eq!(trace.root(), "1-5759e988-bd862e3fe1be46a994272793");
        assert_eq!(trace.to_string(), LAMBDA);
    }

    #[test]
    fn fields_sqs_would_refuse_or_x_ray_may_add_are_left_out() {
        let trace = TraceHeader::parse(&format!("{LAMBDA};Lineage=a87bd80c:1|68fd508a:5;Self=1-x")).unwrap();
        assert_eq!(trace.to_string(), LAMBDA);
        let bare = TraceHeader::parse("Parent=zz;Root=1-5759e988-bd862e3fe1be46a994272793").unwrap();
        assert_eq!(bare.to_string(), "Root=1-5759e988-bd862e3fe1be46a994272793");
    }

    #[test]
    fn a_header_without_a_well_formed_root_is_no_trace() {
        for header in [
            "",
            "Sampled=1",
            "Root=2-5759e988-bd862e3fe1be46a994272793",
            "Root=1-5759e988-bd862e3fe1be46a99427279",
            "Root=1-5759e98g-bd862e3fe1be46a994272793",
            "Root=1-5759e988-bd862e3fe1be46a994272793-00",
            "Root=1-5759e988-bd862e3fe1be46a994272793\u{0};Parent=53995c3f42cd8ad8",
            "Root=junk;Parent=53995c3f42cd8ad8;Sampled=1",
        ] {
            assert_eq!(TraceHeader::parse(header), None, "{header:?}");
        }
    }

    #[test]
    fn a_malformed_field_beside_a_good_root_is_dropped_not_fatal() {
        let trace = TraceHeader::parse("Root=1-5759e988-bd862e3fe1be46a994272793;Root=junk;Sampled=yes").unwrap();
        assert_eq!(trace.to_string(), "Root=1-5759e988-bd862e3fe1be46a994272793");
    }
}
