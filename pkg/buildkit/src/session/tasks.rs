//! The session's tasks: the tunnel's pumps, the server, and the tasks its services start for
//! each call, all owned here so that closing the session stops and awaits every one of them.

use std::{
    future::Future,
    sync::{Arc, Mutex, MutexGuard},
};

use tokio::task::JoinSet;

/// A shared set of tasks (the services hold it, as does the session).
#[derive(Clone, Default)]
pub(super) struct Tasks(Arc<Mutex<JoinSet<()>>>);

impl std::fmt::Debug for Tasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tasks")
            .field("running", &self.set().len())
            .finish()
    }
}

impl Tasks {
    /// The set, even after a panic elsewhere poisoned its lock: a task list is never left
    /// half-updated by the operations below.
    fn set(&self) -> MutexGuard<'_, JoinSet<()>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts `task` on the runtime, owned by the set.
    pub(super) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let mut set = self.set();
        // Forget the tasks that ended, so that a long session does not keep them all.
        while set.try_join_next().is_some() {}
        set.spawn(task);
    }

    /// Aborts every task (they end at their next await point).
    pub(super) fn abort_all(&self) {
        self.set().abort_all();
    }

    /// Aborts every task and waits until all have ended.
    pub(super) async fn shutdown(&self) {
        let mut set = std::mem::take(&mut *self.set());
        set.abort_all();
        while set.join_next().await.is_some() {}
    }
}
