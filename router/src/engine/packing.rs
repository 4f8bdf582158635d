//! The delivery mode as a strategy over the one lane scheduler: how proven records are packed
//! into Invokes (`ROUTER_DELIVERY`).
//! - `record`: each record is its own Invoke, sent when its lane reaches it.
//! - `tenant-batch`: a record joins its tenant's open chunk, an envelope batch
//!   ([`shared::BatchPayload`]) of at most `ROUTER_BATCH_MAX_BYTES` — and in
//!   `request-response`, of no more records than the backend's answer can describe within
//!   Lambda's 6 MB response limit, each counted at its worst case (`shared::answer`); a chunk is
//!   sent when the next record does not fit, when a lane needs it delivered before its next
//!   record may go,
//!   when the chunks held together exceed `ROUTER_BATCH_HOLD_BYTES` (the largest go, as many as
//!   it takes to make room, and the next record waits for their delivery), so a large batch of
//!   many tenants never holds every envelope, and at the end of the batch. Except the chunk a
//!   lane needs delivered, chunks are sent beside the lanes ([`Packer::send_early`]): no lane
//!   waits for a slow tenant's chunks unless its own record is among them.
//!
//! Order within a lane: a lane's record may join the chunk that holds the lane's previous record
//! (one Invoke keeps their order); any other chunk only after that one has been sent and the
//! ordering gate has been asked again. In an ordered batch one tenant's chunks are sent one after
//! the other, in the order they were filled; an unordered batch's, and different tenants', at
//! once (within each tenant's share of the Invokes, `engine::fair`). Every Invoke, in both modes, goes through
//! [`Packer::dispatch`]: the gate is asked once more just before it goes out, and its answer
//! ends exactly the records it carried, as its answer says (`reply`: in `request-response` mode
//! the backend's answer, per record for a chunk). A chunk the service refuses as unusable (400,
//! 413, 415) is split and its records sent one by one, so one bad record cannot fail its
//! neighbours.
//!
//! A chunk tells the backend its ordering rule (`ordering`: after a failure, the failed record's
//! lane — or, for a stream, every later record — is not run) and, in `request-response` mode,
//! asks for a per-record answer. With `request-response` an Invoke ends only when the backend is
//! done, so a lane's next chunk goes only after the backend has run the previous one: the
//! ordering rules hold at the backend, not only while dispatching.

use std::collections::HashMap;
use std::sync::Mutex;

use futures::StreamExt;
use shared::{BatchAnswer, BatchOrdering, BatchPayload, TenantId, answer};
use tokio::sync::{Notify, Semaphore, oneshot, watch};

use super::context::RouteContext;
use super::fair::TenantSlots;
use super::isolation::isolated;
use super::ledger::Ledger;
use super::quarantine;
use super::reply::{self, Reply};
use super::send::{Sent, send};
use crate::backend::Backend;
use crate::config::{Delivery, InvocationType};
use crate::outcome::Outcome;
use crate::record::Ordering;

/// A proven record, wrapped and ready to be sent.
pub struct Ready {
    /// The proven tenant.
    pub tenant: TenantId,
    /// Its envelope.
    pub payload: Vec<u8>,
    /// For its outcome line.
    pub correlation_id: String,
    /// `X-Amzn-Trace-Id` for its Invoke.
    pub trace_header: Option<String>,
    /// Its envelope's `id`, which the backend's answer names (for a KPL user record
    /// `<sequence number>:<index>`, not the sequence number it is reported by).
    pub envelope_id: String,
}

/// Where a lane's latest record waits to be sent (`tenant-batch`): its tenant's chunk.
#[derive(Default)]
pub struct Hold(Option<(TenantId, u64)>);

/// A record carried by an Invoke.
struct Member {
    index: usize,
    lane: usize,
    correlation_id: String,
    trace_header: Option<String>,
    envelope_id: String,
}

/// What one Invoke carries.
enum Body {
    /// One envelope.
    Plain(Vec<u8>),
    /// An envelope batch.
    Batch(BatchPayload),
}

/// A tenant's chunk being filled.
struct Open {
    id: u64,
    batch: BatchPayload,
    members: Vec<Member>,
    /// The most bytes the backend's answer to it can take (`request-response`): the sum of its
    /// records' [`answer::record_answer_bound`].
    answer_bytes: usize,
}

#[derive(Default)]
struct Chunks {
    next_id: u64,
    /// One open chunk per tenant.
    open: HashMap<TenantId, Open>,
    /// Chunks on their way, by id: done when the value turns true.
    sending: HashMap<u64, watch::Receiver<bool>>,
    /// Bytes of the chunks not yet delivered (open, or sealed and on their way).
    held_bytes: usize,
    /// Of those, the bytes of the sealed chunks: freed as they are delivered.
    sealed_bytes: usize,
    /// Per tenant, the chunk sealed last: the next one is sent after it (ordered batches).
    last_sealed: HashMap<TenantId, u64>,
    /// Whether a tenant's chunks go one after the other: in an ordered batch a lane's records
    /// may span two chunks. An unordered batch's chunks go at once, within the tenant's share.
    chained: bool,
}

/// A chunk taken out to be sent: done when `done` turns true; sent once `after` (the tenant's
/// chunk sealed before it, if still on its way) is done.
struct Sealed {
    open: Open,
    done: watch::Sender<bool>,
    after: Option<watch::Receiver<bool>>,
    /// Its bytes, counted in `held_bytes` until it is delivered.
    bytes: usize,
}

impl Chunks {
    /// Takes `tenant`'s open chunk out to be sent.
    fn seal(&mut self, tenant: &TenantId) -> Option<Sealed> {
        let open = self.open.remove(tenant)?;
        let bytes = open.batch.len();
        self.sealed_bytes += bytes;
        let (done, waiting) = watch::channel(false);
        self.sending.insert(open.id, waiting);
        let after = if self.chained {
            self.last_sealed
                .insert(tenant.clone(), open.id)
                .and_then(|previous| self.sending.get(&previous).cloned())
        } else {
            None
        };
        Some(Sealed {
            open,
            done,
            after,
            bytes,
        })
    }
}

/// Packs proven records into Invokes and sends them.
pub struct Packer<'e, B> {
    ledger: &'e Ledger<'e, 'e>,
    context: &'e RouteContext<'e, B>,
    /// `None` in `record` mode.
    chunks: Option<Mutex<Chunks>>,
    turns: Mutex<Turns>,
    /// Told whenever a chunk has been delivered (`tenant-batch`).
    delivered: Notify,
    /// At most `max_in_flight` Invokes at once, in both modes.
    invokes: Semaphore,
    /// At most `max_in_flight_per_tenant` of them for one tenant.
    tenant_slots: TenantSlots,
    /// Chunks sealed beside the lanes, for [`Packer::send_early`].
    early: Mutex<Early>,
    /// Told when `early` changes.
    early_changed: Notify,
}

/// Chunks sealed early, waiting to be sent, and whether more may come.
#[derive(Default)]
struct Early {
    queue: std::collections::VecDeque<(TenantId, Sealed)>,
    closed: bool,
}

enum Step {
    /// Added to its tenant's open chunk; the chunk that was full before it, to send.
    Appended(Option<Sealed>),
    /// The chunk holding the lane's previous record must be delivered first.
    Deliver(TenantId, u64),
    /// The chunk holding the lane's previous record is full: it goes first.
    Send(Sealed),
}

/// Whose turn it is to be placed (`tenant-batch`).
#[derive(Default)]
struct Turns {
    next: usize,
    waiting: HashMap<usize, oneshot::Sender<()>>,
}

impl<'e, B: Backend> Packer<'e, B> {
    /// A packer for the context's delivery mode.
    pub fn new(ledger: &'e Ledger<'e, 'e>, context: &'e RouteContext<'e, B>) -> Self {
        let chunks = (context.config.delivery == Delivery::TenantBatch).then(|| {
            Mutex::new(Chunks {
                chained: context.ordering != Ordering::Independent,
                ..Chunks::default()
            })
        });
        Self {
            ledger,
            context,
            chunks,
            turns: Mutex::default(),
            delivered: Notify::new(),
            invokes: Semaphore::new(context.config.max_in_flight),
            tenant_slots: TenantSlots::new(context.config.max_in_flight_per_tenant),
            early: Mutex::default(),
            early_changed: Notify::new(),
        }
    }

    /// Sends the chunks sealed beside the lanes — full ones, those sealed to make room under
    /// the hold budget, and at the end the rest — each as soon as it is sealed and all at once
    /// (the Invoke slots and each tenant's order bound them), until [`Packer::finish`] and the
    /// queue is empty. Runs beside the lanes, so no lane waits for a send to start.
    pub async fn send_early(&self) {
        if self.chunks.is_none() {
            return;
        }
        let next = |()| async move {
            loop {
                let changed = self.early_changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                {
                    let mut early = self.early.lock().expect("early lock");
                    if let Some(item) = early.queue.pop_front() {
                        return Some((item, ()));
                    }
                    if early.closed {
                        return None;
                    }
                }
                changed.await;
            }
        };
        futures::stream::unfold((), next)
            .for_each_concurrent(None, |(tenant, sealed)| async move {
                self.send_sealed(&tenant, sealed).await;
            })
            .await;
    }

    /// How many lanes run at once: `max_in_flight`, except for an ordered batch in
    /// `tenant-batch` mode, where every lane runs (a lane there mostly waits for its turn, and
    /// one whose next record is the turn must never wait for a free slot behind lanes that
    /// wait for later turns). Every record of an unordered batch is a lane of its own, started
    /// in batch order, so there the turn always belongs to a started lane or to the next one.
    pub fn lane_concurrency(&self) -> Option<usize> {
        match (&self.chunks, self.context.ordering) {
            (Some(_), Ordering::Lanes | Ordering::Stream) => None,
            _ => Some(self.context.config.max_in_flight),
        }
    }

    /// Whether `lanes` lanes start round-robin across tenants (`engine::fair`): in `record`
    /// mode, when there are more of them than slots (fewer all start at once). In
    /// `tenant-batch` mode records are placed in batch order and the batches are sent beside the
    /// lanes, within each tenant's share.
    pub fn starts_fairly(&self, lanes: usize) -> bool {
        self.chunks.is_none() && lanes > self.context.config.max_in_flight
    }

    /// Waits until record `index` may be placed (`tenant-batch`: records join chunks in batch
    /// order, so a tenant's chunks read like the batch and one lane cannot crowd out the
    /// others). Every record takes its turn once and passes it with [`Packer::pass`].
    pub async fn turn(&self, index: usize) {
        if self.chunks.is_none() {
            return;
        }
        let waiting = {
            let mut turns = self.turns.lock().expect("turns lock");
            if turns.next == index {
                return;
            }
            let (wake, waiting) = oneshot::channel();
            turns.waiting.insert(index, wake);
            waiting
        };
        let _ = waiting.await;
    }

    /// Record `index` is placed: the next record's turn.
    pub fn pass(&self, index: usize) {
        if self.chunks.is_none() {
            return;
        }
        let mut turns = self.turns.lock().expect("turns lock");
        debug_assert_eq!(turns.next, index, "turns are taken in batch order");
        turns.next = index + 1;
        if let Some(wake) = turns.waiting.remove(&(index + 1)) {
            let _ = wake.send(());
        }
    }

    /// Delivers record `index` of `lane`, whose turn it is, and passes the turn: sends it now
    /// (`record`), or adds it to its tenant's chunk (`tenant-batch`), first delivering the chunk
    /// that holds the lane's previous record when this one cannot join it.
    pub async fn deliver(&self, lane: usize, index: usize, ready: Ready, hold: &mut Hold) {
        let Ready {
            tenant,
            payload,
            correlation_id,
            trace_header,
            envelope_id,
        } = ready;
        let answer_bytes = match self.context.invocation {
            InvocationType::RequestResponse => answer::record_answer_bound(&envelope_id),
            InvocationType::Event => 0,
        };
        let member = Member {
            index,
            lane,
            correlation_id,
            trace_header,
            envelope_id,
        };
        let Some(chunks) = &self.chunks else {
            return self
                .dispatch(&tenant, vec![member], Body::Plain(payload))
                .await;
        };
        self.within_budget(payload.len()).await;
        let mut member = Some(member);
        loop {
            let step = {
                let mut chunks = chunks.lock().expect("chunks lock");
                let open = chunks.open.get(&tenant);
                let open_id = open.map(|open| open.id);
                let limit = self.context.config.batch_max_bytes(self.context.invocation);
                // A sync chunk must also leave room for its answer within Lambda's response
                // limit, however the backend words each record's result.
                let answer_limit = shared::SYNC_PAYLOAD_LIMIT - answer::BATCH_ANSWER_OVERHEAD;
                let full = open.is_some_and(|open| {
                    !open.batch.is_empty()
                        && (open.batch.len_with(payload.len()) > limit
                            || open.answer_bytes + answer_bytes > answer_limit)
                });
                match &hold.0 {
                    // The lane's previous record waits in a chunk this one cannot join: that
                    // chunk goes first, and its outcome decides whether this one may go.
                    Some((held_tenant, held))
                        if *held_tenant != tenant || open_id != Some(*held) =>
                    {
                        Step::Deliver(held_tenant.clone(), *held)
                    }
                    Some(_) if full => Step::Send(chunks.seal(&tenant).expect("an open chunk")),
                    _ => {
                        let sealed = if full { chunks.seal(&tenant) } else { None };
                        let id = chunks.next_id;
                        let open = chunks.open.entry(tenant.clone()).or_insert_with(|| Open {
                            id,
                            batch: self.new_batch(&tenant),
                            members: Vec::new(),
                            answer_bytes: 0,
                        });
                        let created = open.members.is_empty();
                        let before = if created { 0 } else { open.batch.len() };
                        open.batch.push(&payload);
                        open.answer_bytes += answer_bytes;
                        open.members.push(member.take().expect("added once"));
                        let (id_used, grown) = (open.id, open.batch.len() - before);
                        if created {
                            chunks.next_id += 1;
                        }
                        chunks.held_bytes += grown;
                        hold.0 = Some((tenant.clone(), id_used));
                        Step::Appended(sealed)
                    }
                }
            };
            match step {
                Step::Appended(sealed) => {
                    self.pass(index);
                    // The full chunk goes beside the lanes: its lane's next record waits for it
                    // only if it must (its hold), and a slow tenant's chain of chunks holds no
                    // lane that other tenants' records need.
                    if let Some(sealed) = sealed {
                        self.send_beside(tenant, sealed);
                    }
                    return;
                }
                Step::Deliver(held_tenant, held) => self.complete(&held_tenant, held).await,
                Step::Send(sealed) => self.send_sealed(&tenant, sealed).await,
            }
            hold.0 = None;
            // The lane's previous record may have failed meanwhile.
            let member = member.as_ref().expect("not added yet");
            if let Some(outcome) = self.ledger.blocked(lane, index) {
                self.pass(index);
                return self.ledger.finish(
                    index,
                    lane,
                    Some(&tenant),
                    Some(&member.correlation_id),
                    outcome,
                );
            }
        }
    }

    /// An empty chunk for `tenant`: with the batch's ordering rule, and asking for a per-record
    /// answer when the backend answers (`request-response`).
    fn new_batch(&self, tenant: &TenantId) -> BatchPayload {
        let ordering = match self.context.ordering {
            Ordering::Independent => None,
            Ordering::Lanes => Some(BatchOrdering::Lanes),
            Ordering::Stream => Some(BatchOrdering::Stream),
        };
        let answer = (self.context.invocation == InvocationType::RequestResponse)
            .then_some(BatchAnswer::PerRecord);
        BatchPayload::with(tenant, ordering, answer)
    }

    /// Delivers the chunk holding the lane's latest record, if any, and waits for its outcome.
    pub async fn settle(&self, hold: &mut Hold) {
        if let Some((tenant, id)) = hold.0.take() {
            self.complete(&tenant, id).await;
        }
    }

    /// The end of the batch: every chunk still open is sealed and handed to
    /// [`Packer::send_early`], and no more will come. A tenant's last chunk then goes as soon as
    /// its chunk before it is done, never after another tenant's.
    pub fn finish(&self) {
        if let Some(chunks) = &self.chunks {
            let sealed: Vec<_> = {
                let mut chunks = chunks.lock().expect("chunks lock");
                let tenants: Vec<TenantId> = chunks.open.keys().cloned().collect();
                tenants
                    .into_iter()
                    .filter_map(|tenant| {
                        let sealed = chunks.seal(&tenant)?;
                        Some((tenant, sealed))
                    })
                    .collect()
            };
            for (tenant, sealed) in sealed {
                self.send_beside(tenant, sealed);
            }
        }
        self.early.lock().expect("early lock").closed = true;
        self.early_changed.notify_waiters();
    }

    /// Waits, with the turn, until `more` bytes fit under `batch_hold_bytes` with the chunks
    /// not yet delivered: the largest open chunks are sealed, until the sealed ones free enough
    /// room once delivered, and handed to [`Packer::send_early`]; then the next delivery is
    /// awaited. Memory stays bounded however large the batch, and records keep their order.
    async fn within_budget(&self, more: usize) {
        let Some(chunks) = &self.chunks else {
            return;
        };
        loop {
            let delivered = self.delivered.notified();
            tokio::pin!(delivered);
            delivered.as_mut().enable();
            let largest = {
                let mut chunks = chunks.lock().expect("chunks lock");
                let budget = self.context.config.batch_hold_bytes;
                if chunks.held_bytes + more <= budget || chunks.held_bytes == 0 {
                    return;
                }
                // Enough is on its way to make room: wait for it. "Enough" is at least a
                // quarter of the budget, so that under pressure a quarter of the held bytes is
                // always on its way, and records wait one round trip per quarter budget, not
                // per record (BENCHMARKS.md, against a 20 ms backend: a half frees no more
                // time and sends more, smaller Invokes).
                let needed = (chunks.held_bytes + more - budget).max(budget / 4);
                if chunks.sealed_bytes >= needed {
                    None
                } else {
                    chunks
                        .open
                        .iter()
                        .max_by_key(|(_, open)| open.batch.len())
                        .map(|(tenant, _)| tenant.clone())
                }
                .map(|tenant| {
                    let sealed = chunks.seal(&tenant).expect("an open chunk");
                    (tenant, sealed)
                })
            };
            match largest {
                Some((tenant, sealed)) => self.send_beside(tenant, sealed),
                None => delivered.await,
            }
        }
    }

    /// Hands a sealed chunk to [`Packer::send_early`].
    fn send_beside(&self, tenant: TenantId, sealed: Sealed) {
        self.early
            .lock()
            .expect("early lock")
            .queue
            .push_back((tenant, sealed));
        self.early_changed.notify_waiters();
    }

    /// Makes sure chunk `id` of `tenant` is delivered: sends it if still open, else waits for
    /// whoever is sending it.
    async fn complete(&self, tenant: &TenantId, id: u64) {
        let Some(chunks) = &self.chunks else {
            return;
        };
        let waiting = {
            let mut chunks = chunks.lock().expect("chunks lock");
            if chunks.open.get(tenant).is_some_and(|open| open.id == id) {
                Ok(chunks.seal(tenant).expect("an open chunk"))
            } else {
                Err(chunks.sending.get(&id).cloned())
            }
        };
        match waiting {
            Ok(sealed) => self.send_sealed(tenant, sealed).await,
            Err(Some(mut waiting)) => {
                // A dropped sender means the chunk's outcomes are written too.
                let _ = waiting.wait_for(|done| *done).await;
            }
            Err(None) => {}
        }
    }

    /// Sends a sealed chunk once the tenant's chunk before it is done (in an ordered batch one
    /// tenant's chunks go one after the other, in the order they were filled), then marks it
    /// done.
    async fn send_sealed(&self, tenant: &TenantId, sealed: Sealed) {
        let Sealed {
            open,
            done,
            after,
            bytes,
        } = sealed;
        if let Some(mut after) = after {
            let _ = after.wait_for(|done| *done).await;
        }
        let id = open.id;
        self.dispatch(tenant, open.members, Body::Batch(open.batch))
            .await;
        if let Some(chunks) = &self.chunks {
            let mut chunks = chunks.lock().expect("chunks lock");
            chunks.sending.remove(&id);
            chunks.held_bytes -= bytes;
            chunks.sealed_bytes -= bytes;
        }
        done.send_replace(true);
        self.delivered.notify_waiters();
    }

    /// Sends one Invoke carrying `members` and ends each of them with its answer.
    async fn dispatch(&self, tenant: &TenantId, mut members: Vec<Member>, mut body: Body) {
        // The ordering rules once more, just before the Invoke goes out: since these records
        // were taken, an earlier record of their lane may have failed, or (streams) a lower
        // sequence number elsewhere.
        let keep: Vec<bool> = members
            .iter()
            .map(
                |member| match self.ledger.blocked(member.lane, member.index) {
                    Some(outcome) => {
                        self.end(tenant, member, outcome);
                        false
                    }
                    None => true,
                },
            )
            .collect();
        if keep.contains(&false) {
            let mut kept = keep.iter();
            members.retain(|_| *kept.next().expect("one flag per member"));
            if let Body::Batch(batch) = &mut body {
                batch.retain(|index| keep[index]);
            }
        }
        if members.is_empty() {
            return;
        }
        if !self.context.info.deadline.can_start() {
            return self.end_unsent(tenant, &members, Outcome::not_started());
        }
        let (payload, as_batch) = match &body {
            Body::Plain(payload) => (payload.as_slice(), false),
            // A record that fits the limit alone but not inside a batch goes as a plain
            // envelope; the backend accepts both shapes.
            Body::Batch(batch)
                if members.len() == 1 && batch.len() > self.context.invocation.payload_limit() =>
            {
                (batch.record(0), false)
            }
            Body::Batch(batch) => (batch.payload(), true),
        };
        let label = &self.ledger.meta(members[0].index).id;
        let trace = members[0].trace_header.as_deref();
        let sent = {
            // The tenant's share first: a tenant at its share waits without holding a slot
            // another tenant could use.
            let _share = self.tenant_slots.acquire(tenant).await;
            let _slot = self.invokes.acquire().await.expect("never closed");
            isolated(
                send(label, tenant, payload, trace, self.context),
                "sending the Invoke",
            )
            .await
            .unwrap_or_else(Sent::Abandoned)
        };
        match sent {
            Sent::Invoked { attempts, answer } => {
                let ids = || {
                    members
                        .iter()
                        .map(|member| member.envelope_id.as_str())
                        .collect()
                };
                match reply::read(&answer, as_batch, ids) {
                    Reply::Done => {
                        for member in &members {
                            self.end(tenant, member, Outcome::Invoked { attempts });
                        }
                    }
                    Reply::Failed(outcome) => {
                        for member in &members {
                            self.end(tenant, member, outcome.clone());
                        }
                    }
                    Reply::PerRecord(results) => {
                        for (member, result) in members.iter().zip(results) {
                            let outcome = result.unwrap_or(Outcome::Invoked { attempts });
                            self.end(tenant, member, outcome);
                        }
                    }
                    Reply::Refused(rejection) => {
                        for member in &members {
                            let meta = self.ledger.meta(member.index);
                            let outcome = isolated(
                                quarantine::reject(meta, rejection.clone(), self.context),
                                "quarantining the record",
                            )
                            .await
                            .unwrap_or_else(|outcome| outcome);
                            self.end(tenant, member, outcome);
                        }
                    }
                }
            }
            Sent::Failed(outcome) => {
                for member in &members {
                    self.end(tenant, member, outcome.clone());
                }
            }
            Sent::Abandoned(outcome) => self.end_unsent(tenant, &members, outcome),
            Sent::Refused(rejection) if members.len() == 1 => {
                let meta = self.ledger.meta(members[0].index);
                let outcome = isolated(
                    quarantine::reject(meta, rejection, self.context),
                    "quarantining the record",
                )
                .await
                .unwrap_or_else(|outcome| outcome);
                self.end(tenant, &members[0], outcome);
            }
            Sent::Refused(rejection) => {
                let Body::Batch(batch) = body else {
                    unreachable!("a plain Invoke carries one record")
                };
                tracing::warn!(
                    message = "tenant batch refused; sending its records one by one",
                    tenant_id = tenant.as_str(),
                    records = members.len(),
                    reason = rejection.reason,
                    detail = rejection.detail.as_str(),
                );
                for (position, member) in members.into_iter().enumerate() {
                    let mut single = batch.empty_like();
                    single.push(batch.record(position));
                    Box::pin(self.dispatch(tenant, vec![member], Body::Batch(single))).await;
                }
            }
        }
    }

    /// Ends the records of an Invoke that never went out, in order, as if each had been taken
    /// after the other: the first of each ordered lane with `outcome`, and whatever the gate
    /// then says of the rest (`earlier-record-failed`).
    fn end_unsent(&self, tenant: &TenantId, members: &[Member], outcome: Outcome) {
        for member in members {
            let outcome = self
                .ledger
                .blocked(member.lane, member.index)
                .unwrap_or_else(|| outcome.clone());
            self.end(tenant, member, outcome);
        }
    }

    fn end(&self, tenant: &TenantId, member: &Member, outcome: Outcome) {
        self.ledger.finish(
            member.index,
            member.lane,
            Some(tenant),
            Some(&member.correlation_id),
            outcome,
        );
    }
}
