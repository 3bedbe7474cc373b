//! What AIS's download status and list report: a job's record (counters, times as RFC 3339 with Go's zero
//! time for "not yet"), its files in flight and done, its failures; and how the nodes' parts add up into the
//! cluster's answer, as AIS's proxy adds them.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Go's zero time: how AIS writes a time not yet set.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// A task as AIS reports it (sizes are JSON strings there).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskInfo {
    pub name: String,
    pub downloaded: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<String>,
    pub start_time: String,
    pub end_time: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskError {
    pub name: String,
    pub error: String,
}

/// A job as AIS's download list and status report it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: String,
    pub xaction_id: String,
    pub description: String,
    pub started_time: String,
    pub finished_time: String,
    pub finished_cnt: i64,
    pub scheduled_cnt: i64,
    pub skipped_cnt: i64,
    pub error_cnt: i64,
    pub total: i64,
    pub all_dispatched: bool,
    pub aborted: bool,
}

/// `GET /v1/download` with an id: the job and its tasks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    #[serde(flatten)]
    pub job: JobRecord,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub current_tasks: Vec<TaskInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finished_tasks: Vec<TaskInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub download_errors: Vec<TaskError>,
}

/// A job time as AIS's download status writes it; 0 is Go's zero time.
pub fn rfc3339(ns: i64) -> String {
    if ns == 0 {
        ZERO_TIME.to_owned()
    } else {
        crate::jobs::rfc3339(ns)
    }
}

impl JobRecord {
    pub fn finished(&self) -> bool {
        self.finished_time != ZERO_TIME
    }

    /// Adds another node's part of the same job, as AIS's proxy does: counts add up, the job is finished
    /// when every part is, dispatched when every part is, aborted when any is.
    fn add(&mut self, other: &JobRecord) {
        self.finished_time = if !self.finished() || !other.finished() {
            ZERO_TIME.to_owned()
        } else {
            self.finished_time.clone().max(other.finished_time.clone())
        };
        self.started_time = self.started_time.clone().min(other.started_time.clone());
        self.finished_cnt += other.finished_cnt;
        self.scheduled_cnt += other.scheduled_cnt;
        self.skipped_cnt += other.skipped_cnt;
        self.error_cnt += other.error_cnt;
        self.total += other.total;
        self.all_dispatched &= other.all_dispatched;
        self.aborted |= other.aborted;
    }
}

impl Status {
    /// The nodes' parts of one job as one.
    pub fn merge(parts: impl IntoIterator<Item = Status>) -> Option<Status> {
        let mut parts = parts.into_iter();
        let mut all = parts.next()?;
        for p in parts {
            all.job.add(&p.job);
            all.current_tasks.extend(p.current_tasks);
            all.finished_tasks.extend(p.finished_tasks);
            all.download_errors.extend(p.download_errors);
        }
        Some(all)
    }

    /// The job records of many jobs' parts, one per job, running ones first, then newest first.
    pub fn merge_records(parts: impl IntoIterator<Item = Status>) -> Vec<JobRecord> {
        let mut by_id: HashMap<String, JobRecord> = HashMap::new();
        for p in parts {
            match by_id.get_mut(&p.job.id) {
                Some(r) => r.add(&p.job),
                None => {
                    by_id.insert(p.job.id.clone(), p.job);
                }
            }
        }
        let mut all: Vec<JobRecord> = by_id.into_values().collect();
        all.sort_by(|a, b| a.finished().cmp(&b.finished()).then(b.started_time.cmp(&a.started_time)));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::download::{new_id, ID_PREFIX};

    fn record(id: &str, started: i64, finished: i64, done: i64) -> Status {
        Status {
            job: JobRecord {
                id: id.into(),
                started_time: rfc3339(started),
                finished_time: rfc3339(finished),
                finished_cnt: done,
                total: done,
                all_dispatched: true,
                ..Default::default()
            },
            finished_tasks: vec![TaskInfo { name: format!("{id}-{done}"), ..Default::default() }],
            ..Default::default()
        }
    }

    #[test]
    fn parts_add_up_as_ais_aggregates_them() {
        let all = Status::merge([record("a", 2_000, 9_000, 2), record("a", 1_000, 0, 3)]).unwrap();
        assert_eq!((all.job.finished_cnt, all.job.total), (5, 5));
        assert!(!all.job.finished(), "running while any part runs");
        assert_eq!(all.job.started_time, rfc3339(1_000));
        assert_eq!(all.finished_tasks.len(), 2);
        let done = Status::merge([record("a", 2_000, 9_000, 2), record("a", 1_000, 11_000, 3)]).unwrap();
        assert_eq!(done.job.finished_time, rfc3339(11_000));
        let records = Status::merge_records([record("old", 1, 2, 1), record("new", 5, 6, 1), record("run", 3, 0, 1)]);
        let ids: Vec<_> = records.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["run", "new", "old"]);
        assert_eq!(rfc3339(0), ZERO_TIME);
        assert_eq!(rfc3339(1_700_000_000_000_000_001), "2023-11-14T22:13:20.000000001Z");
        assert!(new_id().starts_with(ID_PREFIX) && new_id().len() == 13);
    }
}
