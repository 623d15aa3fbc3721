//! The events a notification target may ask for: one table, [`EVENTS`].
//! A new run status (say `cancelled`) becomes an event by adding one line.
//! The config reads it to check `on`; it depends on nothing of the config.

pub use crate::forge::CommitState as ForgeState;

/// How an event reads: neutral, good news or bad news.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Something began.
    Info,
    /// It worked.
    Good,
    /// It did not.
    Bad,
}

/// One event a target may ask for with `on`.
#[derive(Debug)]
pub struct Event {
    /// Its name in `on` and in the document's `event`.
    pub name: &'static str,
    /// Whether a target without `on` gets it.
    pub default_on: bool,
    /// How it reads.
    pub tone: Tone,
    /// The words after the project's name in a message title.
    pub says: &'static str,
    /// The commit status it becomes.
    pub forge: ForgeState,
}

/// Every event. `name` is the run status it comes from, but for `started`
/// (a run began) and `recovered` (a success after a failed, timed-out or
/// interrupted run of the same project).
pub const EVENTS: &[Event] = &[
    Event {
        name: "started",
        default_on: false,
        tone: Tone::Info,
        says: "deploy started",
        forge: ForgeState::Pending,
    },
    Event {
        name: "succeeded",
        default_on: false,
        tone: Tone::Good,
        says: "deployed",
        forge: ForgeState::Success,
    },
    Event {
        name: "failed",
        default_on: true,
        tone: Tone::Bad,
        says: "deploy failed",
        forge: ForgeState::Failure,
    },
    Event {
        name: "timed_out",
        default_on: true,
        tone: Tone::Bad,
        says: "deploy timed out",
        forge: ForgeState::Error,
    },
    Event {
        name: "interrupted",
        default_on: false,
        tone: Tone::Bad,
        says: "deploy interrupted",
        forge: ForgeState::Error,
    },
    Event {
        name: "cancelled",
        default_on: false,
        tone: Tone::Bad,
        says: "deploy cancelled",
        forge: ForgeState::Error,
    },
    Event {
        name: "unhealthy",
        default_on: true,
        tone: Tone::Bad,
        says: "deployed, but the health check failed",
        forge: ForgeState::Failure,
    },
    Event {
        name: "ci_failed",
        default_on: true,
        tone: Tone::Bad,
        says: "not deployed: its CI failed",
        forge: ForgeState::Failure,
    },
    Event {
        name: "ci_timeout",
        default_on: true,
        tone: Tone::Bad,
        says: "not deployed: its CI did not finish in time",
        forge: ForgeState::Error,
    },
    Event {
        name: "recovered",
        default_on: true,
        tone: Tone::Good,
        says: "deployed again after a failure",
        forge: ForgeState::Success,
    },
];

/// The event called `name`.
pub fn event(name: &str) -> Option<&'static Event> {
    EVENTS.iter().find(|e| e.name == name)
}

/// Every event's name, for errors.
pub fn event_names() -> Vec<&'static str> {
    EVENTS.iter().map(|e| e.name).collect()
}

/// What a target without `on` gets.
pub fn default_on() -> Vec<String> {
    EVENTS
        .iter()
        .filter(|e| e.default_on)
        .map(|e| e.name.to_string())
        .collect()
}
