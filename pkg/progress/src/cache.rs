//! `brewkit cache du` and `cache clear` output: BuildKit's cache records summed up, in human sizes.

use std::fmt::Write;

use brewkit_buildkit::proto::moby::buildkit::v1::UsageRecord;
use bytesize::ByteSize;

fn size(bytes: i64) -> String {
    ByteSize::b(bytes.max(0) as u64).display().si().to_string()
}

/// The disk usage table: with `verbose`, one line per record; always the totals.
pub fn usage(records: &[UsageRecord], verbose: bool) -> String {
    let mut out = String::new();
    if verbose {
        let _ = writeln!(
            out,
            "{:<28} {:>10}  {:<9} DESCRIPTION",
            "ID", "SIZE", "STATE"
        );
        let mut sorted: Vec<&UsageRecord> = records.iter().collect();
        sorted.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.id.cmp(&b.id)));
        for record in sorted {
            let state = if record.in_use {
                "in use"
            } else if record.shared {
                "shared"
            } else {
                "free"
            };
            let id: String = record.id.chars().take(25).collect();
            let _ = writeln!(
                out,
                "{id:<28} {:>10}  {state:<9} {}",
                size(record.size),
                record.description
            );
        }
        out.push('\n');
    }
    let total: i64 = records.iter().map(|r| r.size).sum();
    let reclaimable: i64 = records
        .iter()
        .filter(|r| !r.in_use && !r.shared)
        .map(|r| r.size)
        .sum();
    let shared: i64 = records.iter().filter(|r| r.shared).map(|r| r.size).sum();
    let _ = writeln!(out, "records:      {}", records.len());
    let _ = writeln!(out, "total:        {}", size(total));
    let _ = writeln!(out, "reclaimable:  {}", size(reclaimable));
    let _ = writeln!(out, "shared:       {}", size(shared));
    out
}

/// What `cache clear` freed.
pub fn pruned(records: &[UsageRecord]) -> String {
    let total: i64 = records.iter().map(|r| r.size).sum();
    format!("freed {} in {} records\n", size(total), records.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, size: i64, in_use: bool, shared: bool) -> UsageRecord {
        UsageRecord {
            id: id.into(),
            size,
            in_use,
            shared,
            description: format!("step {id}"),
            ..UsageRecord::default()
        }
    }

    #[test]
    fn totals_in_human_sizes() {
        let records = [
            record("a", 1_500_000, false, false),
            record("b", 2_000_000, true, false),
            record("c", 500_000, false, true),
        ];
        let text = usage(&records, false);
        assert!(text.contains("records:      3"), "{text}");
        assert!(text.contains("total:        4.0 MB"), "{text}");
        assert!(text.contains("reclaimable:  1.5 MB"), "{text}");
        assert!(text.contains("shared:       500.0 kB"), "{text}");
        let verbose = usage(&records, true);
        let b = verbose.find("step b").unwrap();
        let a = verbose.find("step a").unwrap();
        assert!(b < a, "largest first: {verbose}");
        assert!(verbose.contains("in use"), "{verbose}");
        assert_eq!(pruned(&records[..1]), "freed 1.5 MB in 1 records\n");
    }
}
