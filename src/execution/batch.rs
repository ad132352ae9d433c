//! One trigger of the loop: the seven durable steps of a micro-batch, each a function, in the
//! order [`StreamingQuery::trigger`] calls them (see the module docs of `execution`).

use std::collections::BTreeMap;
use std::time::Instant;

use super::read_ahead::ReadAhead;
use super::{EngineError, Result, StreamingQuery, lock, source_offset};
use crate::checkpoint::{BatchMetadata, CommitMetadata, OffsetSeq};
use crate::failpoints::{self, FailScope};
use crate::late::late_batch;
use crate::operators::{LateRow, PipelineOutput, StateReport, Thresholds};
use crate::plan::WriteMode;
use crate::progress::{QueryProgress, SinkProgress, SourceProgress, format_ms};
use crate::query::OutputMode as Mode;
use crate::rejects::rejects_batch;
use crate::sink::{DeltaSink, OutputMode, Staged};
use crate::source::parse::Rejected;
use crate::source::{FileSourceOffset, LatestOffset};

/// Phase timings of one trigger, as Spark names them (`durationMs`).
type Durations = BTreeMap<String, u64>;

fn timed<T>(durations: &mut Durations, phase: &str, t: Instant, value: T) -> T {
    *durations.entry(phase.to_string()).or_default() += t.elapsed().as_millis() as u64;
    value
}

/// What a batch read and computed, before its output is written.
struct Processed {
    input_rows: u64,
    files: u64,
    rejects: Vec<Rejected>,
    output: PipelineOutput,
    state: Vec<StateReport>,
}

impl StreamingQuery {
    /// Runs one trigger: plans the next batch if one is due, then runs it through the seven
    /// durable steps. `None` when nothing was due.
    pub(super) async fn trigger(&mut self) -> Result<Option<QueryProgress>> {
        let started = Instant::now();
        let trigger_ms = self.config.clock.now_ms();
        let mut durations = Durations::new();
        let batch_id = self.next_batch;
        let Some(offsets) = self.plan_batch(trigger_ms, &mut durations).await? else {
            return Ok(None);
        };
        let end = source_offset(&offsets, &self.config.checkpoint.join("offsets"))?;
        let processed = self.process(batch_id, &offsets, end, &mut durations).await?;
        let t = Instant::now();
        let batch_ts = offsets.metadata.batch_timestamp_ms;
        let skipped = self.sink.has_committed(batch_id);
        // Steps 4 and 5–6 write to different tables, each committed with the batch's txn:
        // they run at once (their file writes and fsyncs overlap); both land before commits/N.
        let side = commit_side_tables(
            &mut self.rejects,
            self.late.as_mut(),
            self.prev_batch_watermark_ms,
            batch_id,
            batch_ts,
            &processed.rejects,
            &processed.output.late,
        );
        let output = async {
            if skipped {
                return Ok(0);
            }
            let staged = stage_output(
                &mut self.sink,
                &self.write,
                &self.fail,
                batch_id,
                batch_ts,
                &processed.output,
            )
            .await?;
            let rows = staged.rows;
            commit_output(&mut self.sink, self.mode, &self.fail, staged, batch_ts).await?;
            Ok::<u64, EngineError>(rows)
        };
        let (side, written) = tokio::join!(side, output);
        side?;
        let written = written?;
        timed(&mut durations, "addBatch", t, ());
        let batch_watermark = offsets.metadata.batch_watermark_ms;
        let next_watermark = self.tracker.update(
            self.watermark_ms.max(batch_watermark),
            &processed.output.watermarks,
        );
        let t = Instant::now();
        self.write_commit(batch_id, next_watermark)?;
        timed(&mut durations, "commitOffsets", t, ());

        let start_offset = self.committed_offset;
        self.committed_offset = end;
        self.watermark_ms = next_watermark;
        self.prev_batch_watermark_ms = batch_watermark;
        self.last_executed_watermark_ms = Some(batch_watermark);
        self.next_batch = batch_id + 1;
        durations.insert(
            "triggerExecution".to_string(),
            started.elapsed().as_millis() as u64,
        );
        let progress = self.report(BatchReport {
            batch_id,
            trigger_ms,
            batch_watermark,
            start_offset,
            end,
            durations,
            processed: &processed,
            written,
            skipped,
        });
        let mut output = processed.output;
        output.late.clear();
        self.last_output = Some(output);
        Ok(Some(progress))
    }

    /// Steps 1 and 2 — the source logs the batch's files (`sources/0/<k>`), then `offsets/N`
    /// records the source offset, the watermark, the batch time and the settings operators pin.
    /// A batch logged before a crash is taken as it was logged. `None` when no batch is due.
    async fn plan_batch(&mut self, trigger_ms: i64, durations: &mut Durations) -> Result<Option<OffsetSeq>> {
        let status = format!("Getting offsets from {}", self.source_description);
        self.set_status(status, false, true);
        if let Some(seq) = self.pending.take() {
            return Ok(Some(seq));
        }
        let t = Instant::now();
        let latest = timed(
            durations,
            "latestOffset",
            t,
            self.source.latest_offset(self.committed_offset)?,
        );
        if let LatestOffset::Logged(_) = latest {
            self.fail.hit(failpoints::AFTER_SOURCE_LOG)?;
        }
        let end = latest.offset();
        let no_data_batch = self.pipeline.runs_no_data_batches()
            && self
                .last_executed_watermark_ms
                .is_some_and(|last| self.watermark_ms > last);
        if end == self.committed_offset && !no_data_batch {
            return Ok(None);
        }
        let conf = self.pipeline.pin().await?;
        let t = Instant::now();
        let seq = OffsetSeq {
            metadata: BatchMetadata {
                batch_watermark_ms: self.watermark_ms,
                batch_timestamp_ms: trigger_ms,
                conf,
            },
            sources: vec![end.map(|k| FileSourceOffset { log_offset: k }.to_json())],
        };
        self.checkpoint.write_offsets(self.next_batch, &seq)?;
        timed(durations, "walCommit", t, ());
        self.fail.hit(failpoints::AFTER_OFFSETS)?;
        Ok(Some(seq))
    }

    /// Step 3 — reads the batch's files, runs the rows through the operators with the two
    /// watermark thresholds, and writes each stateful operator's state version N+1.
    async fn process(
        &mut self,
        batch_id: u64,
        offsets: &OffsetSeq,
        end: Option<u64>,
        durations: &mut Durations,
    ) -> Result<Processed> {
        if end == self.committed_offset {
            self.set_status("No new data but cleaning up state", false, true);
        } else {
            self.set_status("Processing new data", true, true);
        }
        let t = Instant::now();
        let data = match end {
            Some(end) if Some(end) != self.committed_offset => {
                // File reads and parsing run on a blocking thread, so several queries in one
                // process do not stall each other's async work.
                let reader = self.source.batch_reader(self.committed_offset, end)?;
                let batch = ReadAhead::read(self.read_ahead.take(), reader).await?;
                // The next batch's files, when already known, are read while this one runs.
                self.read_ahead = self
                    .source
                    .next_files_known(Some(end))
                    .map(|files| ReadAhead::start(self.source.reader_of(files)));
                Some(batch)
            }
            _ => None,
        };
        let (input_rows, parts, rejects, files) = match data {
            Some(d) => (d.num_rows() as u64, d.parts, d.rejects, d.files.len() as u64),
            None => (0, Vec::new(), Vec::new(), 0),
        };
        timed(durations, "getBatch", t, ());
        let t = Instant::now();
        let thresholds = Thresholds {
            late_ms: self.prev_batch_watermark_ms,
            evict_ms: offsets.metadata.batch_watermark_ms,
        };
        let output = self
            .pipeline
            .run(
                parts,
                batch_id,
                offsets.metadata.batch_timestamp_ms,
                thresholds,
                &offsets.metadata.conf,
            )
            .await?;
        let state = self.pipeline.commit()?;
        if !state.is_empty() {
            self.fail.hit(failpoints::AFTER_STATE_COMMIT)?;
        }
        timed(durations, "addBatch", t, ());
        Ok(Processed {
            input_rows,
            files,
            rejects,
            output,
            state,
        })
    }

    /// Step 7 — `commits/N` with the watermark batch N+1 runs with.
    fn write_commit(&mut self, batch_id: u64, next_watermark_ms: i64) -> Result<()> {
        self.fail.hit(failpoints::BEFORE_COMMIT_LOG)?;
        self.checkpoint.write_commit(
            batch_id,
            &CommitMetadata {
                next_batch_watermark_ms: next_watermark_ms,
            },
        )?;
        Ok(())
    }

    /// The batch's progress record (Spark's `StreamingQueryProgress`), also kept in
    /// `progress.jsonl`.
    fn report(&mut self, b: BatchReport<'_>) -> QueryProgress {
        let n = b.processed.input_rows;
        let elapsed_ms = b.durations.get("triggerExecution").copied().unwrap_or(0);
        let input_rate = match self.previous_trigger_ms {
            Some(prev) if b.trigger_ms > prev => n as f64 * 1000.0 / (b.trigger_ms - prev) as f64,
            _ => 0.0,
        };
        self.previous_trigger_ms = Some(b.trigger_ms);
        let processed_rate = n as f64 * 1000.0 / elapsed_ms.max(1) as f64;
        let to_json = |o: Option<u64>| o.map(|k| FileSourceOffset { log_offset: k }.to_json());
        let mut event_time = BTreeMap::new();
        // From the first watermark operator that saw rows (R13.5).
        if let Some(s) = b.processed.output.watermarks.iter().find_map(|w| w.stats) {
            event_time.insert("min".to_string(), format_ms(s.min_ms));
            event_time.insert("max".to_string(), format_ms(s.max_ms));
            event_time.insert("avg".to_string(), format_ms(s.avg_ms));
        }
        if self.has_watermark {
            event_time.insert("watermark".to_string(), format_ms(b.batch_watermark));
        }
        let progress = QueryProgress {
            id: self.id().to_string(),
            run_id: self.run_id.clone(),
            name: self.config.name.clone(),
            timestamp: format_ms(b.trigger_ms),
            batch_id: b.batch_id,
            batch_duration: elapsed_ms,
            num_input_rows: n,
            input_rows_per_second: input_rate,
            processed_rows_per_second: processed_rate,
            duration_ms: b.durations,
            event_time,
            state_operators: b.processed.state.clone(),
            sources: vec![SourceProgress {
                description: self.source_description.clone(),
                start_offset: to_json(b.start_offset),
                end_offset: to_json(b.end),
                latest_offset: to_json(self.source.latest_log_id()),
                num_input_rows: n,
                num_input_files: b.processed.files,
                input_rows_per_second: input_rate,
                processed_rows_per_second: processed_rate,
            }],
            sink: SinkProgress {
                description: format!("DeltaSink[{}]", self.config.output.display()),
                num_output_rows: b.written,
                table_version: self.sink.version(),
                skipped_already_committed: b.skipped,
            },
            num_rejected_rows: b.processed.rejects.len() as u64,
            num_late_input_rows: b.processed.output.late.len() as u64,
        };
        // Progress is a report: failing to persist it must not fail a committed batch.
        if let Err(e) = lock(&self.shared).progress.push(progress.clone()) {
            eprintln!(
                "warning: cannot write {}: {e}",
                self.config.checkpoint.join("progress.jsonl").display()
            );
        }
        progress
    }
}

/// What [`StreamingQuery::report`] needs of a finished batch.
struct BatchReport<'a> {
    batch_id: u64,
    trigger_ms: i64,
    batch_watermark: i64,
    start_offset: Option<u64>,
    end: Option<u64>,
    durations: Durations,
    processed: &'a Processed,
    written: u64,
    skipped: bool,
}

/// Step 4 — the batch's rejected records and late rows, each table committed with the
/// batch's txn (skipped when a re-run finds it landed).
async fn commit_side_tables(
    rejects_table: &mut DeltaSink,
    late_table: Option<&mut DeltaSink>,
    late_threshold_ms: i64,
    batch_id: u64,
    batch_ts: i64,
    rejects: &[Rejected],
    late: &[LateRow],
) -> Result<()> {
    if !rejects.is_empty() && !rejects_table.has_committed(batch_id) {
        let staged = rejects_table
            .stage(batch_id, &[rejects_batch(batch_id, rejects)], false, batch_ts)
            .await?;
        rejects_table.commit(staged, OutputMode::Append, batch_ts).await?;
    }
    if let Some(table) = late_table
        && !late.is_empty()
        && !table.has_committed(batch_id)
    {
        let rows =
            late_batch(batch_id, late_threshold_ms, late).map_err(|e| EngineError::Operator(e.into()))?;
        let staged = table.stage(batch_id, &[rows], false, batch_ts).await?;
        table.commit(staged, OutputMode::Append, batch_ts).await?;
    }
    Ok(())
}

/// Step 5 — the output rows' parquet files, as the plan's write mode says: added, replacing
/// the table, or upserted by key.
async fn stage_output(
    sink: &mut DeltaSink,
    write: &WriteMode,
    fail: &FailScope,
    batch_id: u64,
    batch_ts: i64,
    output: &PipelineOutput,
) -> Result<Staged> {
    let staged = match write {
        WriteMode::Append => sink.stage(batch_id, &output.parts, false, batch_ts).await?,
        WriteMode::ReplaceAll => sink.stage(batch_id, &output.parts, true, batch_ts).await?,
        WriteMode::Upsert(layout) => {
            let rows = output.rows()?;
            sink.stage_upsert(batch_id, &rows, layout.clone(), batch_ts)
                .await?
        }
    };
    fail.hit(failpoints::AFTER_FILES_WRITTEN)?;
    Ok(staged)
}

/// Step 6 — the Delta commit with txn (query id, N).
async fn commit_output(
    sink: &mut DeltaSink,
    mode: Mode,
    fail: &FailScope,
    staged: Staged,
    batch_ts: i64,
) -> Result<()> {
    let delta_mode = match mode {
        Mode::Append => OutputMode::Append,
        Mode::Update => OutputMode::Update,
        Mode::Complete => OutputMode::Complete,
    };
    sink.commit(staged, delta_mode, batch_ts).await?;
    fail.hit(failpoints::AFTER_DELTA_COMMIT)?;
    Ok(())
}
