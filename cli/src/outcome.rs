//! The outcome of a test is [`invite_vocab::Outcome`] itself, the runtime's word list; this
//! module gives it what the command line needs and the shared crate must not depend on (it has
//! no dependencies: it links into every instrumented program): serde, as the journal and
//! `--json` write it (the outcome's name, a string), and the parser of `--fail-on`.
//!
//! Both behave as derives on an enum of the same names did: serde goes through
//! `deserialize_enum`/`serialize_unit_variant`, so a journal's `"outcome"` is read, and refused
//! with the same words (`unknown variant `x`, expected one of ...`), as before.

use std::collections::BTreeMap;
use std::fmt;

use invite_vocab::Outcome;
use serde::de::{self, Deserializer, EnumAccess, VariantAccess, Visitor};
use serde::ser::Serializer;

/// Every outcome's name, in [`Outcome::ALL`]'s order.
const NAMES: [&str; Outcome::ALL.len()] = {
    let mut names = [""; Outcome::ALL.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = Outcome::ALL[i].as_str();
        i += 1;
    }
    names
};

/// `#[serde(with = "crate::outcome")]`: the outcome as its name.
pub fn serialize<S: Serializer>(outcome: &Outcome, s: S) -> Result<S::Ok, S::Error> {
    let index = Outcome::ALL.iter().position(|o| o == outcome).unwrap_or(0);
    s.serialize_unit_variant("Outcome", index as u32, outcome.as_str())
}

/// `#[serde(with = "crate::outcome")]`: the outcome a name stands for.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Outcome, D::Error> {
    d.deserialize_enum("Outcome", &NAMES, OutcomeVisitor)
}

/// `#[serde(serialize_with = "crate::outcome::counts")]`: runs per outcome, keyed by name.
pub fn counts<S: Serializer>(counts: &BTreeMap<Outcome, u64>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(counts.iter().map(|(o, n)| (Named(*o), n)))
}

/// An outcome that serializes as its name (a map key).
struct Named(Outcome);

impl serde::Serialize for Named {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize(&self.0, s)
    }
}

struct OutcomeVisitor;

impl<'de> Visitor<'de> for OutcomeVisitor {
    type Value = Outcome;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("enum Outcome")
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Outcome, A::Error> {
        let (outcome, variant) = data.variant_seed(NameSeed)?;
        variant.unit_variant()?;
        Ok(outcome)
    }
}

/// The variant's name, read as an identifier.
struct NameSeed;

impl<'de> de::DeserializeSeed<'de> for NameSeed {
    type Value = Outcome;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Outcome, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl<'de> Visitor<'de> for NameSeed {
    type Value = Outcome;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("variant identifier")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Outcome, E> {
        Outcome::from_name(name).ok_or_else(|| E::unknown_variant(name, &NAMES))
    }
}

/// The values of `--fail-on`: every outcome but `pass` (passing is never a reason to stop a
/// deployment).
pub fn fail_on_parser() -> impl clap::builder::TypedValueParser<Value = Outcome> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(NAMES[1..].iter().copied()).try_map(|name: String| {
        Outcome::from_name(&name).ok_or_else(|| format!("`{name}` is not an outcome"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    struct Record {
        #[serde(with = "crate::outcome")]
        outcome: Outcome,
    }

    fn read(json: &str) -> Result<Outcome, String> {
        let value: serde_json::Value = serde_json::from_str(json).unwrap();
        serde_json::from_value::<Record>(value)
            .map(|r| r.outcome)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn names_read_back_and_others_are_refused_in_serdes_words() {
        for o in Outcome::ALL {
            let line = serde_json::to_string(&Record { outcome: o }).unwrap();
            assert_eq!(line, format!("{{\"outcome\":\"{o}\"}}"));
            assert_eq!(read(&line), Ok(o));
        }
        // An enum's other spelling in JSON, a one-key map, is read as a derive reads it.
        assert_eq!(read(r#"{"outcome":{"crash":null}}"#), Ok(Outcome::Crash));
        assert_eq!(
            read(r#"{"outcome":"Pass"}"#).unwrap_err(),
            "unknown variant `Pass`, expected one of `pass`, `fail`, `crash`, `timeout`, `error`"
        );
        assert_eq!(
            read(r#"{"outcome":7}"#).unwrap_err(),
            "invalid type: integer `7`, expected string or map"
        );
    }

    #[test]
    fn counts_are_keyed_by_name_in_the_contracts_order() {
        let totals: BTreeMap<Outcome, u64> = Outcome::ALL.iter().map(|&o| (o, 1)).collect();
        let mut out = Vec::new();
        counts(&totals, &mut serde_json::Serializer::new(&mut out)).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"pass":1,"fail":1,"crash":1,"timeout":1,"error":1}"#
        );
    }
}
