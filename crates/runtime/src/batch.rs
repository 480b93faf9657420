//! Group commit: one task takes jobs as they queue up and hands them to a processor in batches,
//! so that many concurrent writes share one transaction (one commit, one set of page writes)
//! instead of queueing for the database one by one.

use tokio::sync::{mpsc, oneshot};

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
    /// Starts the batching task. `process` receives up to `max_batch` jobs and must return one
    /// result per job, in order; a job's caller is answered only after `process` returns.
    pub fn spawn<P>(max_batch: usize, process: P) -> Self
    where
        P: Fn(Vec<J>) -> BoxFuture<'static, Vec<Result<R, ServiceError>>> + Send + Sync + 'static,
    {
        let (sender, mut receiver) = mpsc::channel::<(J, Reply<R>)>(max_batch * 4);
        tokio::spawn(async move {
            while let Some(first) = receiver.recv().await {
                let mut jobs = Vec::with_capacity(max_batch);
                let mut replies = Vec::with_capacity(max_batch);
                let (job, reply) = first;
                jobs.push(job);
                replies.push(reply);
                while jobs.len() < max_batch {
                    let Ok((job, reply)) = receiver.try_recv() else { break };
                    jobs.push(job);
                    replies.push(reply);
                }
                let results = process(jobs).await;
                for (reply, result) in replies.into_iter().zip(results) {
                    // The caller may have gone away (client cancelled): the work is done regardless.
                    let _ = reply.send(result);
                }
            }
        });
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
        let batcher: Batcher<u32, u32> = Batcher::spawn(8, |jobs: Vec<u32>| {
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
