//! The coordinator: the async shell around the quorum state machines ([`crate::quorum`]).
//!
//! For each client request it reads the current [`RegionView`], builds a round over the key's
//! replicas, sends what the round asks for (to itself without serialization, to the others
//! over the RPC endpoint), feeds the answers back, and answers the client at the round's
//! decision. The round keeps running after the decision in a background task: late
//! acknowledgements are collected, replicas that did not acknowledge get hints, and late read
//! responses feed background read repair. `docs/algorithms/quorum.md` ("What the shell must
//! do") is the contract this file follows.

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use meridian_config::ConsistencyLevel;
use meridian_crdt::{NodeId, Op, OpContext, ReadValue, Record, ValueKind};
use meridian_local::Origin;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::Instrument;

use crate::error::RegionError;
use crate::membership::RegionView;
use crate::node::Inner;
use crate::quorum::{required_answers, ReadRound, ReadStatus, WriteAction, WritePlan, WriteRound, WriteStatus};
use crate::rpc::{decode_response, encode_request_traced, Request, Response};
use crate::service::{ReadOutcome, WriteOutcome, WriteRequest};

/// What a write round's transmits need besides the round.
#[derive(Debug)]
pub(crate) struct WriteJob {
    pub(crate) keyspace: String,
    pub(crate) key: Vec<u8>,
    pub(crate) kind: ValueKind,
    pub(crate) op: Op,
    /// The coordinator's context, shared by every `Apply` (`lww`).
    pub(crate) ctx: OpContext,
    pub(crate) view: Arc<RegionView>,
    pub(crate) deadline: Instant,
}

/// Replica error codes that are the client's fault: the same request fails the same way at
/// every replica.
const CLIENT_REFUSALS: [&str; 3] = ["too_many_siblings", "kind_mismatch", "invalid_op"];

/// A write round's decision, sent to the waiting client.
type WriteDecision = (WriteStatus, Option<Record>);

impl Inner {
    /// Milliseconds on the node's monotonic clock (tokio's, so simulations control it).
    pub(crate) fn mono_ms(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.started).as_millis() as u64
    }

    fn check_key(&self, key: &[u8]) -> Result<(), RegionError> {
        if key.is_empty() {
            return Err(RegionError::InvalidRequest("the key is empty".into()));
        }
        if key.len() > self.limits.max_key_bytes {
            return Err(RegionError::KeyTooLarge { len: key.len(), max: self.limits.max_key_bytes });
        }
        Ok(())
    }

    fn check_values(&self, op: &Op) -> Result<(), RegionError> {
        let max = self.limits.max_value_bytes;
        let too_big = |len: usize| if len > max { Err(RegionError::ValueTooLarge { len, max }) } else { Ok(()) };
        match op {
            Op::LwwPut { value, .. } => too_big(value.len()),
            Op::MvrPut { value: Some(value), .. } => too_big(value.len()),
            Op::SetUpdate { add, remove, .. } => add.iter().chain(remove).try_for_each(|e| too_big(e.len())),
            _ => Ok(()),
        }
    }

    /// The key's replicas in preference order, and how many must answer: the level's count
    /// over the configured replication factor. A write also goes to the *pending* replicas of
    /// a membership change under way (a joining node taking over a range, the new owner of a
    /// leaving node's range), and needs one more acknowledgement per pending replica
    /// (Cassandra's rule), so that it is durable at the level in the ring before the change and
    /// in the ring after it.
    pub(crate) fn replicas(
        &self,
        view: &RegionView,
        keyspace: &str,
        key: &[u8],
        level: ConsistencyLevel,
        write: bool,
    ) -> Result<(Vec<NodeId>, usize), RegionError> {
        let token = meridian_local::token_of(keyspace, key);
        let mut replicas = view.ring.replicas(token, self.rf);
        let mut required = required_answers(level, self.rf);
        if replicas.len() < required {
            return Err(RegionError::NotEnoughNodes { nodes: view.ring.len_nodes(), replication_factor: self.rf });
        }
        if write {
            let pending = view.pending_replicas(token, self.rf);
            required += pending.len();
            replicas.extend(pending);
        }
        // Refuse up front, with nothing sent or written anywhere, when the failure detector
        // already counts fewer live replicas than the level needs (Cassandra's Unavailable):
        // the client then knows the request had no effect, instead of an indeterminate
        // failure after some replicas applied it.
        let down: Vec<(NodeId, String)> = replicas
            .iter()
            .filter(|r| **r != self.me && !view.is_live(**r))
            .map(|r| (*r, "down according to the failure detector".to_owned()))
            .collect();
        if replicas.len() - down.len() < required {
            return Err(RegionError::Unavailable { level, required, answered: 0, asked: 0, failures: down });
        }
        Ok((replicas, required))
    }

    /// Sends one request to `to` (itself directly), bounded by `deadline`.
    pub(crate) async fn call(
        self: Arc<Self>,
        to: NodeId,
        req: Request,
        view: Arc<RegionView>,
        deadline: Instant,
    ) -> (NodeId, Result<Response, RegionError>) {
        if to == self.me {
            return (to, Ok(self.replica.handle(req).await));
        }
        let Some(member) = view.members.get(&to) else {
            return (to, Err(RegionError::rpc(to, "not a member")));
        };
        let timeout = deadline.saturating_duration_since(Instant::now());
        let payload = Bytes::from(encode_request_traced(&req, meridian_net::trace::current_traceparent().as_deref()));
        let res = match self.endpoint.request(member.rpc, payload, timeout).await {
            Ok(bytes) => decode_response(&bytes),
            Err(e) => Err(RegionError::rpc(&member.name, e)),
        };
        (to, res)
    }

    /// Runs a client write, in a `coordinator.write` span (no key: keys are never logged or
    /// traced).
    pub(crate) async fn write(self: Arc<Self>, req: WriteRequest) -> Result<WriteOutcome, RegionError> {
        let span = tracing::info_span!(
            "coordinator.write",
            node = %self.me,
            keyspace = %req.keyspace,
            consistency = ?req.consistency,
            otel.status_code = tracing::field::Empty,
        );
        let result = self.write_inner(req).instrument(span.clone()).await;
        if let Err(e) = &result {
            span.record("otel.status_code", "ERROR");
            tracing::debug!(parent: &span, code = e.code(), "write failed");
        }
        result
    }

    async fn write_inner(self: Arc<Self>, req: WriteRequest) -> Result<WriteOutcome, RegionError> {
        let started = Instant::now();
        self.accepting()?;
        self.check_fence()?;
        let ks = self.keyspaces.get(&req.keyspace)?;
        self.check_key(&req.key)?;
        self.check_values(&req.op)?;
        if let Some(found) = req.op.kind() {
            if found != ks.kind {
                return Err(RegionError::WrongType { keyspace: ks.name, actual: ks.kind, endpoint: found });
            }
        }
        let level = req.consistency.or(ks.consistency).unwrap_or(self.default_consistency);
        if let Some(expected) = &req.if_match {
            if expected.is_empty() {
                return Err(RegionError::InvalidRequest("If-Match must name a version".into()));
            }
            let current = Arc::clone(&self).read(ks.name.clone(), req.key.clone(), Some(level)).await?;
            let version = if current.value.is_absent() { None } else { current.version() };
            if version.as_deref() != Some(expected.as_str()) {
                return Err(RegionError::VersionConflict { expected: expected.clone(), current: version });
            }
        }
        let view = self.membership.view();
        let (mut replicas, required) = self.replicas(&view, &ks.name, &req.key, level, true)?;
        let plan = WritePlan::for_op(ks.kind, &req.op)?;
        if plan.has_leader() {
            // The leader applies first: this node when it is a replica (one hop less), else
            // the first live replica.
            let leader = if replicas.contains(&self.me) {
                Some(self.me)
            } else {
                replicas.iter().copied().find(|r| view.is_live(*r))
            };
            if let Some(pos) = leader.and_then(|l| replicas.iter().position(|r| *r == l)) {
                let l = replicas.remove(pos);
                replicas.insert(0, l);
            }
        }
        let deadline = Instant::now() + self.rpc_timeout;
        let mut round = WriteRound::new(replicas.clone(), level, plan, self.mono_ms(deadline)).with_required(required);
        for r in &replicas {
            if *r != self.me && !view.is_live(*r) {
                round.on_failure(*r, "down according to the failure detector");
            }
        }
        let ctx = self.replica.own_context();
        let job = Arc::new(WriteJob {
            keyspace: ks.name.clone(),
            key: req.key,
            kind: ks.kind,
            op: req.op,
            ctx,
            view,
            deadline,
        });
        let (tx, rx) = oneshot::channel();
        tokio::spawn(Arc::clone(&self).drive_write(round, Arc::clone(&job), Some(tx)).in_current_span());
        let (status, record) =
            rx.await.map_err(|_| RegionError::Protocol("the write's coordinator task ended early".into()))?;
        self.metrics.write_latency.observe(started.elapsed());
        match status {
            WriteStatus::Succeeded { acked } => {
                self.metrics.inc(&self.metrics.writes_ok);
                let record = record.unwrap_or_else(|| Record::empty(ks.kind));
                let ts = if ks.kind == ValueKind::Lww { job.ctx.ts } else { record.last_modified() };
                Ok(WriteOutcome {
                    kind: ks.kind,
                    record,
                    ts,
                    consistency: level,
                    acknowledged: acked.len(),
                    replicas: replicas.len(),
                })
            }
            WriteStatus::Failed(e) => {
                self.metrics.inc(&self.metrics.writes_failed);
                // A replica that refused the operation itself (the leader of an mvr write at
                // its sibling cap, say) answers for the client: that is a 4xx, not a 503.
                if let RegionError::Unavailable { failures, .. } = &e {
                    for (_, reason) in failures {
                        for code in CLIENT_REFUSALS {
                            if let Some(at) = reason.find(&format!("{code}: ")) {
                                let message = reason[at + code.len() + 2..].to_owned();
                                return Err(RegionError::Refused { code: code.to_owned(), message });
                            }
                        }
                    }
                    self.metrics.inc(&self.metrics.unavailable);
                }
                Err(e)
            }
            WriteStatus::Pending => Err(RegionError::Protocol("write round reported without a decision".into())),
        }
    }

    /// Drives a write round to its end: reports the decision on `tx` as soon as it is made,
    /// keeps delivering to the remaining replicas, then stores hints for those that did not
    /// acknowledge.
    pub(crate) async fn drive_write(
        self: Arc<Self>,
        mut round: WriteRound,
        job: Arc<WriteJob>,
        mut tx: Option<oneshot::Sender<WriteDecision>>,
    ) {
        let mut pending = FuturesUnordered::new();
        loop {
            while let Some(t) = round.poll_transmit() {
                // Replicas already failed (down according to the failure detector) are not sent
                // anything: they get a hint instead, and no stale request reaches them later.
                if round.failures().iter().any(|(n, _)| *n == t.to) {
                    continue;
                }
                let req = match t.action {
                    WriteAction::Apply => Request::Apply {
                        keyspace: job.keyspace.clone(),
                        key: job.key.clone(),
                        kind: job.kind,
                        op: job.op.clone(),
                        ctx: Some(job.ctx.into()),
                        limits: self.crdt_limits,
                    },
                    WriteAction::ApplyAsLeader => Request::Apply {
                        keyspace: job.keyspace.clone(),
                        key: job.key.clone(),
                        kind: job.kind,
                        op: job.op.clone(),
                        ctx: None,
                        limits: self.crdt_limits,
                    },
                    WriteAction::Merge { record, origin, then_apply } => Request::Merge {
                        keyspace: job.keyspace.clone(),
                        key: job.key.clone(),
                        kind: job.kind,
                        record: (*record).clone(),
                        origin,
                        then_apply,
                        limits: self.crdt_limits,
                    },
                };
                pending.push(Arc::clone(&self).call(t.to, req, Arc::clone(&job.view), job.deadline));
            }
            if round.is_decided() {
                if let Some(tx) = tx.take() {
                    let _ = tx.send((round.poll(), round.hint_record().cloned()));
                }
            }
            if pending.is_empty() {
                break;
            }
            tokio::select! {
                Some((node, res)) = pending.next() => {
                    match res {
                        Ok(Response::Applied { record }) => {
                            round.on_applied(node, record);
                        }
                        Ok(Response::Merged) => {
                            round.on_ack(node);
                        }
                        Ok(Response::Error { code, message }) => {
                            round.on_failure(node, format!("{code}: {message}"));
                        }
                        Ok(other) => {
                            round.on_failure(node, format!("unexpected answer {other:?}"));
                        }
                        Err(e) => {
                            round.on_failure(node, e.to_string());
                        }
                    }
                }
                _ = tokio::time::sleep_until(job.deadline), if !round.is_decided() => {
                    round.on_timeout(self.mono_ms(Instant::now()));
                }
            }
        }
        if !round.is_decided() {
            // Nothing left to wait for: the round fails (it would have decided otherwise).
            round.on_timeout(u64::MAX);
        }
        if let Some(tx) = tx.take() {
            let _ = tx.send((round.poll(), round.hint_record().cloned()));
        }
        self.store_hints(&round, &job).await;
    }

    async fn store_hints(&self, round: &WriteRound, job: &WriteJob) {
        let Some(record) = round.hint_record().cloned() else { return };
        let targets = round.hint_targets();
        if targets.is_empty() {
            return;
        }
        let store = Arc::clone(&self.store);
        let (keyspace, key) = (job.keyspace.clone(), job.key.clone());
        let now = self.clock.now_ms();
        let n = targets.len() as u64;
        let res = self
            .replica
            .blocking(move || -> Result<(), RegionError> {
                for t in targets {
                    store.put_hint(t.0, &keyspace, &key, &record, now)?;
                }
                Ok(())
            })
            .await;
        match res {
            Ok(Ok(())) => {
                self.metrics.hints_written.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(Err(e)) | Err(e) => tracing::warn!(error = %e, "could not store hints; anti-entropy will repair"),
        }
    }

    /// Runs a client read.
    pub(crate) async fn read(
        self: Arc<Self>,
        keyspace: String,
        key: Vec<u8>,
        consistency: Option<ConsistencyLevel>,
    ) -> Result<ReadOutcome, RegionError> {
        let span =
            tracing::info_span!("coordinator.read", node = %self.me, keyspace = %keyspace, consistency = ?consistency);
        self.read_inner(keyspace, key, consistency).instrument(span).await
    }

    async fn read_inner(
        self: Arc<Self>,
        keyspace: String,
        key: Vec<u8>,
        consistency: Option<ConsistencyLevel>,
    ) -> Result<ReadOutcome, RegionError> {
        let started = Instant::now();
        self.accepting()?;
        self.check_fence()?;
        let ks = self.keyspaces.get(&keyspace)?;
        self.check_key(&key)?;
        let level = consistency.or(ks.consistency).unwrap_or(self.default_consistency);
        let view = self.membership.view();
        let (mut replicas, required) = self.replicas(&view, &ks.name, &key, level, false)?;
        if let Some(pos) = replicas.iter().position(|r| *r == self.me) {
            let me = replicas.remove(pos);
            replicas.insert(0, me);
        }
        let deadline = Instant::now() + self.rpc_timeout;
        let mut round = ReadRound::new(replicas.clone(), level, self.mono_ms(deadline)).with_required(required);
        for r in &replicas {
            if *r != self.me && !view.is_live(*r) {
                round.on_failure(*r, "down according to the failure detector");
            }
        }
        let job = Arc::new(WriteJob {
            keyspace: ks.name.clone(),
            key,
            kind: ks.kind,
            op: Op::Reset,
            ctx: self.replica.own_context(),
            view,
            deadline,
        });
        let (tx, rx) = oneshot::channel();
        tokio::spawn(Arc::clone(&self).drive_read(round, replicas, level, required, job, tx).in_current_span());
        let res = rx.await.map_err(|_| RegionError::Protocol("the read's coordinator task ended early".into()))?;
        self.metrics.read_latency.observe(started.elapsed());
        match res {
            Ok((merged, responders)) => {
                self.metrics.inc(&self.metrics.reads_ok);
                let now = self.clock.now_ms();
                let value = merged.as_ref().map_or(ReadValue::Absent, |r| r.read(now));
                Ok(ReadOutcome { kind: ks.kind, record: merged, value, consistency: level, responders })
            }
            Err(e) => {
                self.metrics.inc(&self.metrics.reads_failed);
                if matches!(e, RegionError::Unavailable { .. }) {
                    self.metrics.inc(&self.metrics.unavailable);
                }
                Err(e)
            }
        }
    }

    /// Drives a read round: answers on `tx` at the decision (after the blocking repair at
    /// `QUORUM` and `ALL`), then keeps taking late responses and repairs in the background.
    async fn drive_read(
        self: Arc<Self>,
        mut round: ReadRound,
        replicas: Vec<NodeId>,
        level: ConsistencyLevel,
        required: usize,
        job: Arc<WriteJob>,
        tx: oneshot::Sender<Result<(Option<Record>, usize), RegionError>>,
    ) {
        let mut tx = Some(tx);
        let mut pending = FuturesUnordered::new();
        loop {
            while let Some(to) = round.poll_transmit() {
                if round.failures().iter().any(|(n, _)| *n == to) {
                    continue;
                }
                let req = Request::Read { keyspace: job.keyspace.clone(), key: job.key.clone() };
                pending.push(Arc::clone(&self).call(to, req, Arc::clone(&job.view), job.deadline));
            }
            if round.is_decided() {
                if let Some(tx) = tx.take() {
                    let answer = match round.poll(self.clock.now_ms()) {
                        ReadStatus::Decided(d) => {
                            let blocking_repair = if d.repair_blocking { round.take_repairs() } else { None };
                            match blocking_repair {
                                Some(plan) => {
                                    self.metrics
                                        .read_repairs
                                        .fetch_add(plan.targets.len() as u64, std::sync::atomic::Ordering::Relaxed);
                                    let repair = plan
                                        .round(&replicas, level, self.mono_ms(job.deadline))
                                        .with_required(required);
                                    let (rtx, rrx) = oneshot::channel();
                                    tokio::spawn(
                                        Arc::clone(&self)
                                            .drive_write(repair, Arc::clone(&job), Some(rtx))
                                            .in_current_span(),
                                    );
                                    match rrx.await {
                                        Ok((WriteStatus::Succeeded { .. }, _)) => Ok((d.merged, d.responders.len())),
                                        Ok((WriteStatus::Failed(e), _)) => Err(e),
                                        _ => Err(RegionError::Protocol("read repair ended without a decision".into())),
                                    }
                                }
                                None => Ok((d.merged, d.responders.len())),
                            }
                        }
                        ReadStatus::Failed(e) => Err(e),
                        ReadStatus::Pending => Err(RegionError::Protocol("read decided while pending".into())),
                    };
                    let _ = tx.send(answer);
                }
                self.background_repair(&mut round, &job);
            }
            if pending.is_empty() {
                break;
            }
            tokio::select! {
                Some((node, res)) = pending.next() => {
                    match res {
                        Ok(Response::Record(record)) => {
                            round.on_response(node, record);
                        }
                        Ok(Response::Error { code, message }) => {
                            round.on_failure(node, format!("{code}: {message}"));
                        }
                        Ok(other) => {
                            round.on_failure(node, format!("unexpected answer {other:?}"));
                        }
                        Err(e) => {
                            round.on_failure(node, e.to_string());
                        }
                    }
                }
                _ = tokio::time::sleep_until(job.deadline), if !round.is_decided() => {
                    round.on_timeout(self.mono_ms(Instant::now()));
                }
            }
        }
        if !round.is_decided() {
            round.on_timeout(u64::MAX);
        }
        if let Some(tx) = tx.take() {
            let answer = match round.poll(self.clock.now_ms()) {
                ReadStatus::Decided(d) => Ok((d.merged, d.responders.len())),
                ReadStatus::Failed(e) => Err(e),
                ReadStatus::Pending => Err(RegionError::Protocol("read ended without a decision".into())),
            };
            let _ = tx.send(answer);
        }
        self.background_repair(&mut round, &job);
    }

    /// Sends the repair merges the read has not handed out yet, without waiting for them.
    fn background_repair(self: &Arc<Self>, round: &mut ReadRound, job: &Arc<WriteJob>) {
        while let Some(plan) = round.take_repairs() {
            for target in plan.targets {
                self.metrics.inc(&self.metrics.read_repairs);
                let req = Request::Merge {
                    keyspace: job.keyspace.clone(),
                    key: job.key.clone(),
                    kind: job.kind,
                    record: plan.record.clone(),
                    origin: Origin::Repair,
                    then_apply: None,
                    limits: self.crdt_limits,
                };
                let deadline = Instant::now() + self.rpc_timeout;
                tokio::spawn(Arc::clone(self).call(target, req, Arc::clone(&job.view), deadline).in_current_span());
            }
        }
    }
}
