//! tantivy's [`Document`] trait implemented over an [`Event`], so that indexing walks the event's
//! spans directly instead of building a `TantivyDocument` with one `String` per field.
//!
//! tantivy requires documents to be `'static` (they cross a channel to the indexing threads), so
//! [`EventDocument`] owns a clone of the event. Cloning an `Event` bumps the `Bytes` refcount and
//! copies its small vectors; text stays in the shared frame.

use std::net::IpAddr;

use cairn_ingest::{Event, FieldValue, SdElement, Text};
use tantivy::DateTime;
use tantivy::schema::Field;
use tantivy::schema::document::{Document, ReferenceValue, ReferenceValueLeaf, Value};

use crate::schema::EventFields;

/// Key under which structured data is nested in the `fields` object: `sd.<SD-ID>.<PARAM>`.
pub(crate) const STRUCTURED_DATA_KEY: &str = "sd";

/// One event ready to be indexed.
#[derive(Debug)]
pub(crate) struct EventDocument {
    event: Event,
    signatures: Vec<Box<str>>,
    fields: EventFields,
}

impl EventDocument {
    pub(crate) fn new(event: &Event, signatures: &[&str], fields: EventFields) -> EventDocument {
        EventDocument {
            event: event.clone(),
            signatures: event
                .signatures
                .iter()
                .map(|name| Box::from(&**name))
                .chain(signatures.iter().map(|name| Box::from(*name)))
                .collect(),
            fields,
        }
    }
}

impl Document for EventDocument {
    type Value<'a> = EventValue<'a>;
    type FieldsValuesIter<'a> = EventFieldsIter<'a>;

    fn iter_fields_and_values(&self) -> EventFieldsIter<'_> {
        EventFieldsIter {
            document: self,
            raw: self.event.raw_str(),
            slot: Slot::Seq,
            item: 0,
        }
    }
}

fn date(nanos: i64) -> ReferenceValueLeaf<'static> {
    ReferenceValueLeaf::Date(DateTime::from_timestamp_nanos(nanos))
}

/// A value of an [`EventDocument`]: a leaf, or one of the nested objects of the `fields` field.
#[derive(Debug, Clone)]
pub(crate) enum EventValue<'a> {
    Leaf(ReferenceValueLeaf<'a>),
    /// The `fields` object: the event's fields, then `sd` when it has structured data.
    Fields {
        event: &'a Event,
        raw: &'a str,
    },
    /// `fields.sd`: one object per SD-ELEMENT.
    StructuredData {
        event: &'a Event,
        raw: &'a str,
    },
    /// `fields.sd.<SD-ID>`: the element's params.
    SdElement {
        element: &'a SdElement,
        raw: &'a str,
    },
}

impl<'a> Value<'a> for EventValue<'a> {
    type ArrayIter = std::iter::Empty<EventValue<'a>>;
    type ObjectIter = EventObjectIter<'a>;

    fn as_value(&self) -> ReferenceValue<'a, Self> {
        match self {
            EventValue::Leaf(leaf) => ReferenceValue::Leaf(leaf.clone()),
            EventValue::Fields { event, raw } => ReferenceValue::Object(EventObjectIter::Fields {
                event,
                raw,
                index: 0,
            }),
            EventValue::StructuredData { event, raw } => {
                ReferenceValue::Object(EventObjectIter::StructuredData {
                    elements: event.structured_data.iter(),
                    raw,
                })
            }
            EventValue::SdElement { element, raw } => {
                ReferenceValue::Object(EventObjectIter::Params {
                    params: element.params.iter(),
                    raw,
                })
            }
        }
    }
}

fn field_value_leaf<'a>(value: &'a FieldValue, raw: &'a str) -> ReferenceValueLeaf<'a> {
    match value {
        FieldValue::Text(text) => ReferenceValueLeaf::Str(text.resolve(raw)),
        FieldValue::I64(number) => ReferenceValueLeaf::I64(*number),
        FieldValue::U64(number) => ReferenceValueLeaf::U64(*number),
        FieldValue::F64(number) => ReferenceValueLeaf::F64(*number),
        FieldValue::Bool(flag) => ReferenceValueLeaf::Bool(*flag),
    }
}

/// Iterates the key/value pairs of one of the nested objects of [`EventValue`].
#[derive(Debug, Clone)]
pub(crate) enum EventObjectIter<'a> {
    Fields {
        event: &'a Event,
        raw: &'a str,
        index: usize,
    },
    StructuredData {
        elements: std::slice::Iter<'a, SdElement>,
        raw: &'a str,
    },
    Params {
        params: std::slice::Iter<'a, (Text, Text)>,
        raw: &'a str,
    },
}

impl<'a> Iterator for EventObjectIter<'a> {
    type Item = (&'a str, EventValue<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            EventObjectIter::Fields { event, raw, index } => {
                let position = *index;
                *index += 1;
                if let Some(field) = event.fields.get(position) {
                    let leaf = field_value_leaf(&field.value, raw);
                    return Some((field.name.resolve(raw), EventValue::Leaf(leaf)));
                }
                let is_structured_data_slot = position == event.fields.len();
                (is_structured_data_slot && !event.structured_data.is_empty()).then_some((
                    STRUCTURED_DATA_KEY,
                    EventValue::StructuredData { event, raw },
                ))
            }
            EventObjectIter::StructuredData { elements, raw } => {
                let element = elements.next()?;
                Some((
                    element.id.resolve(raw),
                    EventValue::SdElement { element, raw },
                ))
            }
            EventObjectIter::Params { params, raw } => {
                let (name, value) = params.next()?;
                Some((
                    name.resolve(raw),
                    EventValue::Leaf(ReferenceValueLeaf::Str(value.resolve(raw))),
                ))
            }
        }
    }
}

/// The schema fields in the order they are emitted; multi-valued ones repeat their slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    Seq,
    Ts,
    ReceivedAt,
    Host,
    App,
    Procid,
    Msgid,
    Severity,
    SeverityCode,
    Facility,
    Format,
    Source,
    Flags,
    Signatures,
    Rules,
    Message,
    Fields,
    Peer,
    PeerPort,
    Raw,
    Done,
}

impl Slot {
    fn next(self) -> Slot {
        match self {
            Slot::Seq => Slot::Ts,
            Slot::Ts => Slot::ReceivedAt,
            Slot::ReceivedAt => Slot::Host,
            Slot::Host => Slot::App,
            Slot::App => Slot::Procid,
            Slot::Procid => Slot::Msgid,
            Slot::Msgid => Slot::Severity,
            Slot::Severity => Slot::SeverityCode,
            Slot::SeverityCode => Slot::Facility,
            Slot::Facility => Slot::Format,
            Slot::Format => Slot::Source,
            Slot::Source => Slot::Flags,
            Slot::Flags => Slot::Signatures,
            Slot::Signatures => Slot::Rules,
            Slot::Rules => Slot::Message,
            Slot::Message => Slot::Fields,
            Slot::Fields => Slot::Peer,
            Slot::Peer => Slot::PeerPort,
            Slot::PeerPort => Slot::Raw,
            Slot::Raw | Slot::Done => Slot::Done,
        }
    }
}

/// Walks the fields of an [`EventDocument`] without allocating.
#[derive(Debug)]
pub(crate) struct EventFieldsIter<'a> {
    document: &'a EventDocument,
    /// The frame as text, validated once per walk.
    raw: &'a str,
    slot: Slot,
    /// Position inside a multi-valued slot.
    item: usize,
}

impl<'a> EventFieldsIter<'a> {
    fn text(&self, field: Field, text: Option<&'a Text>) -> Option<(Field, EventValue<'a>)> {
        let value = text?.resolve(self.raw);
        Some((field, EventValue::Leaf(ReferenceValueLeaf::Str(value))))
    }

    fn keyword(field: Field, name: &'static str) -> Option<(Field, EventValue<'a>)> {
        Some((field, EventValue::Leaf(ReferenceValueLeaf::Str(name))))
    }

    /// The value of the current slot, or `None` when the event has nothing for it.
    fn value_of_slot(&mut self) -> Option<(Field, EventValue<'a>)> {
        let document = self.document;
        let event = &document.event;
        let fields = &document.fields;
        let leaf =
            |field: Field, leaf: ReferenceValueLeaf<'a>| Some((field, EventValue::Leaf(leaf)));
        match self.slot {
            Slot::Seq => leaf(fields.seq, ReferenceValueLeaf::U64(event.seq.0)),
            Slot::Ts => leaf(fields.ts, date(event.ts.as_nanos())),
            Slot::ReceivedAt => leaf(fields.received_at, date(event.received_at.as_nanos())),
            Slot::Host => self.text(fields.host, event.host.as_ref()),
            Slot::App => self.text(fields.app, event.app.as_ref()),
            Slot::Procid => self.text(fields.procid, event.procid.as_ref()),
            Slot::Msgid => self.text(fields.msgid, event.msgid.as_ref()),
            Slot::Severity => Self::keyword(fields.severity, event.severity?.name()),
            Slot::SeverityCode => leaf(
                fields.severity_code,
                ReferenceValueLeaf::U64(u64::from(event.severity?.code())),
            ),
            Slot::Facility => Self::keyword(fields.facility, event.facility?.name()),
            Slot::Format => Self::keyword(fields.format, event.format.name()),
            Slot::Source => Self::keyword(fields.source, event.source.name()),
            Slot::Flags => {
                let name = event.flags.names().nth(self.item)?;
                self.item += 1;
                Self::keyword(fields.flags, name)
            }
            Slot::Signatures => {
                let name = document.signatures.get(self.item)?;
                self.item += 1;
                leaf(fields.signature, ReferenceValueLeaf::Str(name))
            }
            Slot::Rules => {
                let title = event.signature_titles.get(self.item)?;
                self.item += 1;
                leaf(fields.rule, ReferenceValueLeaf::Str(title))
            }
            Slot::Message => leaf(
                fields.message,
                ReferenceValueLeaf::Str(event.message.resolve(self.raw)),
            ),
            Slot::Fields => {
                let has_fields = !event.fields.is_empty() || !event.structured_data.is_empty();
                has_fields.then_some((
                    fields.fields,
                    EventValue::Fields {
                        event,
                        raw: self.raw,
                    },
                ))
            }
            Slot::Peer => {
                let ip = match event.peer?.ip() {
                    IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                    IpAddr::V6(v6) => v6,
                };
                leaf(fields.peer, ReferenceValueLeaf::IpAddr(ip))
            }
            Slot::PeerPort => leaf(
                fields.peer_port,
                ReferenceValueLeaf::U64(u64::from(event.peer?.port())),
            ),
            Slot::Raw => leaf(fields.raw, ReferenceValueLeaf::Str(self.raw)),
            Slot::Done => None,
        }
    }
}

impl<'a> Iterator for EventFieldsIter<'a> {
    type Item = (Field, EventValue<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        while self.slot != Slot::Done {
            let multi_valued = matches!(self.slot, Slot::Flags | Slot::Signatures | Slot::Rules);
            let value = self.value_of_slot();
            if value.is_none() || !multi_valued {
                self.slot = self.slot.next();
                self.item = 0;
            }
            if value.is_some() {
                return value;
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use bytes::Bytes;
    use cairn_ingest::{
        EventFlags, Field as EventField, FrameMeta, SdElement, Seq, Severity, Source, Span,
        Timestamp,
    };

    use super::*;
    use crate::schema::{FIELDS, FLAGS, HOST, PEER, SIGNATURE, build_schema};

    fn sample_event() -> Event {
        let meta = FrameMeta {
            seq: Seq(7),
            received_at: Timestamp(1_000),
            peer: Some("10.1.2.3:514".parse::<SocketAddr>().expect("addr")),
            source: Source::SyslogUdp,
            flags: EventFlags::PARSE_ERROR,
        };
        let mut event = Event::unparsed(Bytes::from_static(b"web1 sshd: hello"), &meta);
        event.host = Some(Text::Span(Span::new(0, 4)));
        event.severity = Some(Severity::Error);
        event.fields.push(EventField {
            name: Text::owned("user"),
            value: FieldValue::Text(Text::owned("root")),
        });
        event.structured_data.push(SdElement {
            id: Text::owned("origin"),
            params: vec![(Text::owned("ip"), Text::owned("10.0.0.9"))],
        });
        event
    }

    #[test]
    fn document_walk_emits_each_present_field_and_repeats_multi_valued_ones() {
        let (schema, fields) = build_schema();
        let event = sample_event();
        let document = EventDocument::new(&event, &["ssh_brute", "ssh_root"], fields);
        let names: Vec<&str> = document
            .iter_fields_and_values()
            .map(|(field, _)| schema.get_field_name(field))
            .collect();
        assert_eq!(names.iter().filter(|name| **name == SIGNATURE).count(), 2);
        assert_eq!(names.iter().filter(|name| **name == FLAGS).count(), 2);
        assert!(names.contains(&HOST));
        assert!(names.contains(&PEER));
        assert!(!names.contains(&"app"));
        let host = document
            .iter_fields_and_values()
            .find(|(field, _)| *field == fields.host)
            .and_then(|(_, value)| value.as_str());
        assert_eq!(host, Some("web1"));
    }

    #[test]
    fn fields_object_nests_structured_data_under_sd() {
        let (schema, fields) = build_schema();
        let event = sample_event();
        let document = EventDocument::new(&event, &[], fields);
        let (_, value) = document
            .iter_fields_and_values()
            .find(|(field, _)| schema.get_field_name(*field) == FIELDS)
            .expect("fields present");
        let owned = tantivy::schema::OwnedValue::from(value.as_value());
        let json = serde_json::to_value(&owned).expect("serialise");
        assert_eq!(
            json,
            serde_json::json!({"user": "root", "sd": {"origin": {"ip": "10.0.0.9"}}})
        );
    }
}
