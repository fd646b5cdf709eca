//! The trail's end, anchored where a cut would show: every record a manager writes names the last
//! line of the hash-chained trail that was durable when it was written (so at least the line of
//! its own change), in [`RecordMeta::trail`]. A trail whose last lines were cut off ends before a
//! line the store vouches for, and a trail rewritten from some line on holds another line where a
//! record names one: [`JsonlAuditSink::verify_against_store`] reports both.
//!
//! [`JsonlAuditSink::verify_against_store`]: super::JsonlAuditSink::verify_against_store

use std::collections::{BTreeMap, BTreeSet};

use crate::store::RecordMeta;

/// A line of a hash-chained audit trail, as a record names it: which trail, which line, and the
/// line's hash.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct TrailAnchor {
    /// The trail: the hash of its first line (a trail's name for itself, wherever its file lives).
    pub trail: String,
    /// The line's number, from 1.
    pub line: u64,
    /// The line's hash.
    pub hash: String,
}

impl TrailAnchor {
    /// Line `line` of the trail whose first line's hash is `trail`, with hash `hash`.
    pub fn new(trail: &str, line: u64, hash: &str) -> Self {
        Self { trail: trail.to_owned(), line, hash: hash.to_owned() }
    }
}

/// The lines of each trail that the records name, with the hashes they name for each line.
#[derive(Debug, Default)]
pub(crate) struct Anchors {
    by_trail: BTreeMap<String, AnchoredLines>,
}

/// The lines of one trail that records name, by line number, with every hash named for each
/// (one, unless the trail was rewritten between the records' writes).
pub(crate) type AnchoredLines = BTreeMap<u64, BTreeSet<String>>;

impl Anchors {
    /// The anchors `records` hold.
    pub(crate) fn of<'a>(records: impl IntoIterator<Item = &'a RecordMeta>) -> Self {
        let mut by_trail: BTreeMap<String, AnchoredLines> = BTreeMap::new();
        for anchor in records.into_iter().filter_map(|meta| meta.trail.as_ref()) {
            let lines = by_trail.entry(anchor.trail.clone()).or_default();
            lines.entry(anchor.line).or_default().insert(anchor.hash.clone());
        }
        Self { by_trail }
    }

    /// The lines named of the trail whose first line's hash is `trail`.
    pub(crate) fn of_trail(&self, trail: &str) -> Option<&AnchoredLines> {
        self.by_trail.get(trail)
    }

    /// How many trails other than `trail` (none: the trail is empty) the records name.
    pub(crate) fn other_trails(&self, trail: Option<&str>) -> usize {
        self.by_trail.keys().filter(|name| Some(name.as_str()) != trail).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anchored(id: &str, anchor: Option<TrailAnchor>) -> RecordMeta {
        let mut meta = RecordMeta::new(id, "api_key", "default", "k1", chrono::Utc::now());
        meta.trail = anchor;
        meta
    }

    #[test]
    fn every_line_named_of_each_trail_is_kept_with_its_hashes() {
        let records = [
            anchored("default/a", Some(TrailAnchor::new("t1", 4, "h4"))),
            anchored("default/b", Some(TrailAnchor::new("t1", 9, "h9"))),
            anchored("default/c", Some(TrailAnchor::new("t1", 4, "other"))),
            anchored("default/d", Some(TrailAnchor::new("t2", 2, "x2"))),
            anchored("default/e", None),
        ];
        let anchors = Anchors::of(&records);
        let t1 = anchors.of_trail("t1").unwrap();
        assert_eq!(t1.keys().copied().collect::<Vec<_>>(), [4, 9]);
        assert_eq!(t1[&4], BTreeSet::from(["h4".to_owned(), "other".to_owned()]));
        assert_eq!(anchors.of_trail("t2").unwrap().len(), 1);
        assert_eq!(anchors.of_trail("t3"), None);
        assert_eq!(anchors.other_trails(Some("t1")), 1);
        assert_eq!(anchors.other_trails(None), 2);
    }
}
