//! Group commit: one task takes jobs as they queue up and hands them to a processor in batches,
//! so that many concurrent writes share one transaction (one commit, one set of page writes)
//! instead of queueing for the database one by one.

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

use crate::{ErrorKind, ServiceError, auth::BoxFuture};

type Reply<R> = oneshot::Sender<Result<R, ServiceError>>;

/// A handle for submitting jobs; cheap to clone.
pub struct Batcher<J, R> {
    sender: mpsc::Sender<(J, Reply<R>)>,
}

impl<J, R> Clone for Batcher<J, R> {
    fn clone(&self) -> Self {
        Self { sender: self.sender.clone() }
    }
}

impl<J: Send + 'static, R: Send + 'static> Batcher<J, R> {
    /// Starts `workers` batching tasks (one for a single-writer database, a few where
    /// transactions can commit in parallel). `process` receives up to `max_batch` jobs and must
    /// return one result per job, in order; a job's caller is answered only after `process` returns.
    pub fn spawn<P>(max_batch: usize, workers: usize, process: P) -> Self
    where
        P: Fn(Vec<J>) -> BoxFuture<'static, Vec<Result<R, ServiceError>>> + Send + Sync + 'static,
    {
        let (sender, receiver) = mpsc::channel::<(J, Reply<R>)>(max_batch * 4);
        let receiver = Arc::new(Mutex::new(receiver));
        let process = Arc::new(process);
        for _ in 0..workers.max(1) {
            let (receiver, process) = (receiver.clone(), process.clone());
            tokio::spawn(async move {
                loop {
                    // One worker at a time gathers a batch; the others are busy writing theirs.
                    let (jobs, replies): (Vec<J>, Vec<Reply<R>>) = {
                        let mut receiver = receiver.lock().await;
                        let Some(first) = receiver.recv().await else { return };
                        let mut batch = vec![first];
                        while batch.len() < max_batch {
                            let Ok(next) = receiver.try_recv() else { break };
                            batch.push(next);
                        }
                        batch.into_iter().unzip()
                    };
                    let results = process(jobs).await;
                    for (reply, result) in replies.into_iter().zip(results) {
                        // The caller may have gone away (client cancelled): the work is done regardless.
                        let _ = reply.send(result);
                    }
                }
            });
        }
        Self { sender }
    }

    pub async fn submit(&self, job: J) -> Result<R, ServiceError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || ServiceError::new(ErrorKind::Unavailable, "shutting down");
        self.sender.send((job, reply)).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_caller_gets_its_own_jobs_result() {
        let batcher: Batcher<u32, u32> = Batcher::spawn(8, 2, |jobs: Vec<u32>| {
            Box::pin(async move { jobs.into_iter().map(|job| Ok(job * 10)).collect() })
        });
        let calls: Vec<_> = (0..32)
            .map(|n| {
                let batcher = batcher.clone();
                tokio::spawn(async move { (n, batcher.submit(n).await) })
            })
            .collect();
        for call in calls {
            let (n, answer) = call.await.expect("task");
            assert_eq!(answer.expect("processed"), n * 10);
        }
    }
}
