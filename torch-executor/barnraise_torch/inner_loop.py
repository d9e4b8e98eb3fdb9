"""The resident inner-loop trainer: one model and one AdamW kept in memory across rounds.

A round is: load the base weights θ_t into the resident model, run H steps of
(batch → loss and gradient → clip by global norm → AdamW at the scheduled learning rate),
write θ_local, and persist the optimizer state. It follows ``trainer/src/train/local-training.ts``
step for step: the schedule is indexed by the run's global inner step (``scheduleOffset``), a
step whose loss or gradient norm is not finite is skipped without touching the weights or the
optimizer, and only the steps that trained count tokens.
"""
import contextlib
import gc
import math
import os
import threading
import time
import traceback

import numpy as np
import torch

from .config import LlamaConfig, count_params, param_specs, parse_config
from .device import GIB, features, plan_fit, resolve_precision, use_ieee_float32_matmuls
from .errors import ExecutorFailure, RanksBroken
from .model import LlamaForCausalLM
from .optim import (STATE_FILE, create_shared_state_file, export_state, finish_shared_state_file, import_state, learning_rate_at, make_adamw,
                    read_state_file, write_state_file, write_state_part)
from .safetensors import DTYPES, SafetensorsError, read_file, read_header, sweep_temp_files, write_file


def is_out_of_memory(err: BaseException) -> bool:
    """CUDA's OutOfMemoryError (torch ≥ 1.13.1) or the RuntimeError older torch and the CPU allocator raise."""
    oom_type = getattr(torch.cuda, 'OutOfMemoryError', None)
    if oom_type is not None and isinstance(err, oom_type):
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and ('out of memory' in text or "can't allocate memory" in text)


def release_frames(err: BaseException):
    """Lets go of the tensors the frames in ``err``'s traceback still hold, before memory is handed back.

    A caught exception keeps every frame it unwound alive, and with them the round's model,
    activations and optimizer; the frame handling it is part of a reference cycle with it, so
    they stay until the garbage collector runs. ``torch.cuda.empty_cache()`` then frees none of
    that memory, and the retry with checkpointing after an out-of-memory error meets the same
    full GPU. The frames' code and line numbers stay, so a traceback still prints.
    """
    traceback.clear_frames(err.__traceback__)
    gc.collect()


def _check_recipe(recipe):
    """Refuses a recipe torch would refuse mid-round (AdamW raises ValueError on a beta of 1) as ERR_BAD_INPUT: the unit's fault, not the child's."""
    if not isinstance(recipe, dict):
        raise ExecutorFailure('ERR_BAD_INPUT', 'recipe must be an object')

    def number(key, ok, what):
        value = recipe.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not ok(value):
            raise ExecutorFailure('ERR_BAD_INPUT', f'recipe {key} {value!r} must be {what}')

    for key in ('innerSteps', 'batchSize', 'seqLen'):
        number(key, lambda v: v == int(v) and v > 0, 'a positive integer')
    number('warmupSteps', lambda v: v == int(v) and v >= 0, 'a non-negative integer')
    number('lr', lambda v: v > 0, 'positive')
    number('weightDecay', lambda v: v >= 0, 'non-negative')
    number('gradClip', lambda v: v > 0, 'positive')
    for key in ('beta1', 'beta2'):
        number(key, lambda v: 0 <= v < 1, 'in [0, 1) (AdamW\'s moments need it)')


class _StepBatches:
    """A unit's token batches read one inner step at a time from the file the agent wrote.

    The file stays on disk (memory-mapped: the page cache, not this process, holds it); only the
    current step's rows become an int64 tensor on the device. Holding every step at once cost
    12 bytes a token on the host and 8 on the GPU, counted by no fit check.
    """

    def __init__(self, tokens, start, end, device):
        self._tokens = tokens
        self._start, self._end = start, end
        self._device = device

    def __len__(self):
        return self._tokens.shape[0]

    def __getitem__(self, step):
        rows = np.asarray(self._tokens[step, self._start:self._end], dtype=np.int64)
        return torch.from_numpy(rows).to(self._device)


def _file_signature(path):
    try:
        st = os.stat(path)
        return (st.st_mtime_ns, st.st_size)
    except FileNotFoundError:
        return None


class ResidentTrainer:
    """Holds the model and optimizer for one device between requests."""

    def __init__(self, device: torch.device, log=lambda line: None, group=None):
        self.device = device
        self.log = log
        # A ranks.RankGroup when this child trains on several devices; None on one.
        self.group = group
        # True while the ranks are inside a round's collectives (see _run).
        self._stepping = False
        # The resident model behind DistributedDataParallel, on several devices.
        self._ddp = None
        self._sharer_count = None
        self.model = None
        self.optimizer = None
        self.optimizer_kind = None
        # Whether the resident optimizer holds only this rank's parameters (a sharded optimizer).
        self.optimizer_sharded = False
        # Which state file the resident optimizer mirrors, and that file's signature when we wrote it.
        self.state_path = None
        self.state_signature = None
        self._writer = None
        self._writer_error = None
        # Folders already cleared of an earlier child's temp files (see _sweep).
        self._swept = set()

    # -- residency ---------------------------------------------------------------------------

    def _ensure_model(self, config: LlamaConfig) -> LlamaForCausalLM:
        if self.model is not None and self.model.config == config:
            return self.model
        self._drop()
        self.model = LlamaForCausalLM(config, self.device)
        self.model.train()
        if self.group is not None:
            self._ddp = self.group.data_parallel(self.model)
        return self.model

    def _drop(self):
        self.model = None
        self._ddp = None
        self._forget_optimizer()
        if self.device.type == 'cuda':
            torch.cuda.empty_cache()

    def _forget_optimizer(self):
        self.optimizer = None
        self.optimizer_sharded = False
        self.state_path = None
        self.state_signature = None

    def resident_bytes(self) -> int:
        """Memory this process holds that a new unit may reuse (what the fit check adds to free memory)."""
        if self.device.type == 'cuda':
            return int(torch.cuda.memory_reserved(self.device))
        if self.model is None:
            return 0
        p = count_params(self.model.config)
        return 4 * p + (4 + 8 * self._owned_share(self.model.config) if self.optimizer_sharded else 12) * p

    def flush(self):
        """Waits for the background optimizer-state write; raises if it failed."""
        if self._writer is not None:
            self._writer.join()
            self._writer = None
        if self._writer_error is not None:
            err, self._writer_error = self._writer_error, None
            self._forget_optimizer()
            raise ExecutorFailure('ERR_STATE_WRITE', f'could not save the inner optimizer state: {err}; check free disk space in the data directory', retryable=True)

    # -- several devices ---------------------------------------------------------------------

    def _leads(self):
        """Rank 0 of a group: it sends every command to the other ranks before doing it itself."""
        return self.group is not None and self.group.rank == 0

    def _rows(self, batch):
        """(start, end, share): the rows of each step's batch this rank trains, and their part of the batch.

        A batch with fewer rows than ranks leaves some ranks none; such a rank still runs a step on
        the batch's first row, weighted 0, so that it joins every gradient all-reduce and adds
        nothing to it: a node with 8 GPUs can take a run whose batch is 4.
        """
        if self.group is None:
            return 0, batch, 1.0
        start, end = self.group.rows(batch)
        if end == start:
            return 0, 1, 0.0
        return start, end, (end - start) / batch

    def _owned(self, config):
        """This rank's (first, end) parameters under a sharded optimizer, in checkpoint order."""
        from .ranks import owned_ranges
        return owned_ranges([math.prod(shape) for _, shape in param_specs(config)], self.group.world)

    def _owned_share(self, config):
        """The part of the weights whose AdamW moments this rank holds when sharded."""
        from .ranks import owned_ranges
        sizes = [math.prod(shape) for _, shape in param_specs(config)]
        first, end = owned_ranges(sizes, self.group.world)[self.group.rank]
        return sum(sizes[first:end]) / sum(sizes)

    def follow(self, message):
        """A worker rank's share of a command rank 0 broadcast."""
        kind = message['type']
        if kind == 'fit':
            return self._fit(*message['args'])
        if kind == 'train':
            return self._run(message['req'], message['plan'], message['reuse'], None, lambda: False)
        if kind == 'measure':
            return self._measure(*message['args'])
        raise ExecutorFailure('ERR_PROTOCOL', f'unknown rank command {kind!r}')

    # -- requests ----------------------------------------------------------------------------

    def fit(self, config: LlamaConfig, batch, seq_len, precision, checkpointing, limit_bytes=None, sharding='auto'):
        """The fit plan for a unit on this device, or on every rank's device (see device.plan_fit).

        On several devices ``sharding`` (auto, on, off) says whether the ranks may share AdamW's
        moments instead of each holding all of them; auto shards when a replica does not fit
        each device, or fits only with activation checkpointing and sharding spares it (the
        broadcast a sharded step adds costs far less than recomputing activations).
        """
        if sharding not in ('auto', 'on', 'off'):
            raise ExecutorFailure('ERR_PROTOCOL', f'sharding {sharding!r} is not auto, on or off')
        args = [config, batch, seq_len, precision, checkpointing, limit_bytes, sharding]
        if self._leads():
            self.group.broadcast({'type': 'fit', 'args': args})
        return self._fit(*args)

    def _fit(self, config, batch, seq_len, precision, checkpointing, limit_bytes, sharding='auto'):
        start, end, _ = self._rows(batch)
        local = self._fit_here(config, end - start, seq_len, precision, checkpointing, limit_bytes)
        if self.group is None:
            return {**local, 'shardedOptimizer': False}
        replica = {**self._gathered(local), 'shardedOptimizer': False}
        added = lambda plan: plan['checkpointing'] and checkpointing != 'on'  # noqa: E731
        if sharding == 'off' or (sharding == 'auto' and replica['fits'] and not added(replica)):
            return replica
        try:
            share = self._owned_share(config)
        except ValueError:
            return replica  # fewer parameters than ranks: nothing to shard
        sharded = {**self._gathered(self._fit_here(config, end - start, seq_len, precision, checkpointing, limit_bytes, share)), 'shardedOptimizer': True}
        if sharding == 'on' or (sharded['fits'] and (not added(sharded) or not replica['fits'])):
            if sharded['fits']:
                sharded['reason'] = '; '.join(r for r in ('AdamW state sharded over the ranks to fit' if sharding == 'auto' else '', sharded['reason']) if r)
            return sharded
        return replica if replica['fits'] else sharded

    def _gathered(self, local):
        """Every rank's plan, as one: it fits when each rank's does."""
        plans = self.group.all_gather({**local, 'device': str(self.device)})
        for rank, plan in enumerate(plans):
            if not plan['fits']:
                return {**plan, 'reason': f'rank {rank} of {len(plans)}: {plan["reason"]}'}
        # Checkpointing changes memory, not the math: one rank that needs it turns it on for all.
        return {**plans[0], 'checkpointing': any(p['checkpointing'] for p in plans),
                'needBytes': max(p['needBytes'] for p in plans), 'freeBytes': min(p['freeBytes'] for p in plans)}

    def _sharers(self):
        """How many ranks use this rank's memory (itself included): all the CPU ranks share the host's.

        A collective the first time: every rank calls it at the same point (fit and measure).
        """
        if self.group is None:
            return 1
        if self._sharer_count is None:
            self._sharer_count = self.group.all_gather(str(self.device)).count(str(self.device))
        return self._sharer_count

    def _fit_here(self, config, batch, seq_len, precision, checkpointing, limit_bytes, share=1.0):
        precision = resolve_precision(precision, self.device)
        ckpt = checkpointing == 'on'
        sharers = self._sharers()
        plan = plan_fit(config, batch, seq_len, precision, ckpt, self.device, self.resident_bytes(), limit_bytes, share, sharers)
        if checkpointing == 'off' and plan['checkpointing']:
            plan = {**plan, 'fits': False, 'checkpointing': False, 'reason': plan_fit(config, batch, seq_len, precision, False, self.device, self.resident_bytes(), limit_bytes, share, sharers)['reason']}
        plan['precision'] = precision
        return plan

    def train(self, req, progress, aborted):
        """Runs one round from a ``train`` request; returns the ``result`` frame's fields."""
        self.flush()
        config = parse_config(req['config'])
        recipe = req['recipe']
        self._sweep(req)
        _check_recipe(recipe)
        batch, seq_len = recipe['batchSize'], recipe['seqLen']
        plan = self.fit(config, batch, seq_len, req.get('precision', 'auto'), req.get('checkpointing', 'auto'), req.get('memoryLimitBytes'), req.get('sharding', 'auto'))
        if not plan['fits']:
            raise ExecutorFailure('ERR_UNIT_TOO_LARGE', plan['reason'] + '; lower the run\'s batch size or sequence length, or join with a larger GPU')
        # Every rank built its optimizer in the same mode, so rank 0's answer holds for all.
        reuse = self._resident_state_current(req['stateDir']) and self.optimizer_sharded == plan['shardedOptimizer']
        if self._leads():
            self.group.broadcast({'type': 'train', 'req': req, 'plan': plan, 'reuse': reuse})
        return self._run(req, plan, reuse, progress, aborted)

    def _sweep(self, req):
        """Once per folder and process: removes the temp files a killed child left half-written there (model-sized each)."""
        for directory in (req.get('stateDir'), os.path.dirname(req.get('outFile') or '')):
            if directory and directory not in self._swept:
                self._swept.add(directory)
                for name in sweep_temp_files(directory):
                    self.log(f'removed {name}, left half-written in {directory} by an earlier child')

    def _run(self, req, plan, reuse, progress, aborted):
        config = parse_config(req['config'])
        try:
            return self._train(req, config, req['recipe'], plan, reuse, progress, aborted)
        except BaseException as err:
            consistent = isinstance(err, ExecutorFailure) and err.code == 'ERR_ABORTED'
            if self._stepping and self.group is not None and not consistent:
                # The other ranks are inside (or headed for) a collective this rank will never
                # join: only a restart of the whole child brings them back in step.
                self._stepping = False
                raise RanksBroken(f'rank {self.group.rank} ({self.device}) failed mid-round: {type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else ""}') from err
            self._stepping = False
            # Half a round has moved the resident moments; the next round reloads them from disk.
            self._forget_optimizer()
            if self.model is not None:
                self.model.zero_grad(set_to_none=True)
            if is_out_of_memory(err):
                release_frames(err)
                self._drop()
                on_gpu = self.device.type == 'cuda'
                where, flag = ('GPU', '--max-gpu-memory') if on_gpu else ('host', '--max-memory')
                raise ExecutorFailure('ERR_OUT_OF_MEMORY', f'{self.device} ran out of {where} memory during the round ({str(err).splitlines()[0][:200]}); '
                                      'the fit estimate was too optimistic for this machine: close other programs using the device, '
                                      f'pass {flag} to leave headroom, or ask the organizer for a smaller batch or sequence length') from None
            raise

    def _load_base(self, model, path):
        try:
            _, tensors = read_file(path)
        except (OSError, SafetensorsError) as err:
            raise ExecutorFailure('ERR_BAD_INPUT', f'base weights {path}: {err}') from None
        with torch.no_grad():
            for name, p in model.ordered_parameters():
                t = tensors.get(name)
                if t is None or list(t.shape) != list(p.shape):
                    raise ExecutorFailure('ERR_BAD_INPUT', f'base weights {path}: tensor {name} is missing or has shape {None if t is None else t.shape}, expected {list(p.shape)}')
                p.copy_(torch.from_numpy(t.to_float32()))

    def _load_batches(self, path, steps, batch, seq_len, vocab, start=0, end=None):
        """The unit's batches (rows ``start:end`` of each step), checked against the vocabulary and read step by step (_StepBatches)."""
        shape = [steps, batch, seq_len + 1]
        try:
            with open(path, 'rb') as f:
                _, entries, data_start = read_header(f, os.fstat(f.fileno()).st_size)
            found = [e for e in entries if e[0] == 'tokens']
            if not found or list(found[0][2]) != shape or found[0][1] not in ('I32', 'I64', 'I16', 'U16', 'I8', 'U8'):
                raise ExecutorFailure('ERR_BAD_INPUT', f'batches {path}: needs integer "tokens" of shape {shape}')
            _, dtype, _, begin, _ = found[0]
            tokens = np.memmap(path, dtype=DTYPES[dtype], mode='r', offset=data_start + begin, shape=tuple(shape))
        except (OSError, ValueError, SafetensorsError) as err:
            raise ExecutorFailure('ERR_BAD_INPUT', f'batches {path}: {err}') from None
        # Checked before the first step, a few steps at a time (bounded memory for any unit).
        chunk = max(1, (1 << 24) // (batch * (seq_len + 1)))
        for at in range(0, steps, chunk):
            part = tokens[at:at + chunk]
            if part.min() < 0 or part.max() >= vocab:
                raise ExecutorFailure('ERR_BAD_INPUT', f'batches {path}: token ids must lie in [0, {vocab})')
        return _StepBatches(tokens, start, batch if end is None else end, self.device)

    def _resident_state_current(self, state_dir):
        """Whether the resident optimizer is what the state file holds (else the file is read)."""
        path = os.path.join(state_dir, STATE_FILE)
        return self.optimizer is not None and self.state_path == path and _file_signature(path) == self.state_signature

    def _stepped_parameters(self, ordered, sharded):
        """(the parameters this rank's optimizer steps, the flat offset of the first): all of them, or this rank's range."""
        if not sharded:
            return ordered, 0
        first, end = self._owned(self.model.config)[self.group.rank]
        return ordered[first:end], sum(p.numel() for _, p in ordered[:first])

    def _optimizer_for(self, model, ordered, state_dir, recipe, reuse, sharded):
        path = os.path.join(state_dir, STATE_FILE)
        betas = (recipe['beta1'], recipe['beta2'])
        # A worker rank reuses its moments exactly when rank 0 does (rank 0 decides from the file).
        if reuse and self.optimizer is not None:
            for group in self.optimizer.param_groups:
                group['betas'] = betas
                group['weight_decay'] = recipe['weightDecay']
            return self.optimizer
        mine, offset = self._stepped_parameters(ordered, sharded)
        try:
            optimizer, kind = make_adamw([p for _, p in mine], recipe['lr'], betas, recipe['weightDecay'], self.device)
        except ValueError as err:
            raise ExecutorFailure('ERR_BAD_INPUT', f'the recipe\'s AdamW settings are refused: {err}') from None
        try:
            saved = read_state_file(path, sum(p.numel() for _, p in ordered), (offset, sum(p.numel() for _, p in mine)))
        except ValueError as err:
            raise ExecutorFailure('ERR_BAD_STATE', str(err)) from None
        if saved is not None:
            import_state(optimizer, mine, *saved)
            self.log(f'resumed the inner optimizer at step {saved[0]} from {path}')
        self.optimizer, self.optimizer_kind, self.optimizer_sharded = optimizer, kind, sharded
        self.state_path = path
        self.state_signature = _file_signature(path)
        return optimizer

    def _autocast(self, precision):
        if precision == 'bf16':
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _sync(self):
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)

    def _load_unit(self, req, config, recipe, model, ordered, reuse, sharded=False):
        """Base weights, this rank's rows of the batches, and the optimizer; every rank or none."""
        steps, batch, seq_len = recipe['innerSteps'], recipe['batchSize'], recipe['seqLen']
        failure = None
        try:
            if seq_len > config.max_position_embeddings:
                raise ExecutorFailure('ERR_BAD_INPUT', f'seqLen {seq_len} exceeds the model\'s max_position_embeddings ({config.max_position_embeddings})')
            self._load_base(model, req['baseFile'])
            start, end, _ = self._rows(batch)
            windows = self._load_batches(req['batchesFile'], steps, batch, seq_len, config.vocab_size, start, end)
            optimizer = self._optimizer_for(model, ordered, req['stateDir'], recipe, reuse, sharded)
        except Exception as err:  # noqa: BLE001 — raised below, once every rank knows
            if self.group is None:
                raise
            failure = err
        if self.group is not None:
            # The ranks read the same files, so they fail alike; this makes sure of it before
            # any of them enters a step's collectives.
            failed = self.group.sum_values([0.0 if failure is None else 1.0])[0]
            if failure is None and failed > 0:
                failure = ExecutorFailure('ERR_BAD_INPUT', 'another rank could not load the unit (rank 0 says why)')
        if failure is not None:
            raise failure
        return windows, optimizer

    def _step(self, model, params, rows, share, precision, clip, stop=False):
        """Forward, backward (gradients averaged over the ranks by DDP), clipping: (loss, norm, stop) as every rank sees them.

        ``share`` is this rank's part of the step's batch rows: each rank's loss is weighted by it
        so the gradient every rank ends with is the whole batch's mean gradient, as on one device.
        """
        with self._autocast(precision):
            loss = model.loss(rows) if self._ddp is None else self._ddp(rows)
        if self.group is None:
            (loss if share == 1 else loss * share).backward()
            loss_value = loss.item()
        else:
            # DDP averages the ranks' gradients; scaled by share × ranks, that average is the sum
            # of each rank's share-weighted gradient, the whole batch's mean gradient.
            (loss * (share * self.group.world)).backward()
            loss_value, stops = self.group.sum_values([loss.item() * share, 1.0 if stop else 0.0])
            stop = stops > 0
        norm = torch.nn.utils.clip_grad_norm_(params, clip)
        return loss_value, norm, stop

    def _train(self, req, config, recipe, plan, reuse, progress, aborted):
        model = self._ensure_model(config)
        model.checkpointing = plan['checkpointing']
        if self.device.type == 'cuda':
            # float32 means float32: no TF32 shortcuts in matmuls.
            use_ieee_float32_matmuls()
            torch.cuda.reset_peak_memory_stats(self.device)
        ordered = model.ordered_parameters()
        params = [p for _, p in ordered]
        steps, batch, seq_len = recipe['innerSteps'], recipe['batchSize'], recipe['seqLen']
        load_started = time.perf_counter()
        sharded = plan.get('shardedOptimizer', False)
        windows, optimizer = self._load_unit(req, config, recipe, model, ordered, reuse, sharded)
        owned = self._owned(config) if sharded else None
        load_seconds = time.perf_counter() - load_started
        offset = req.get('scheduleOffset')
        if offset is None:
            from .optim import adamw_step_count
            offset = adamw_step_count(optimizer)
        peak, warmup, total = recipe['lr'], recipe['warmupSteps'], req['totalInnerSteps']
        precision = plan['precision']
        share = self._rows(batch)[2]
        loss_curve = []
        skipped = 0
        tokens_per_step = batch * seq_len
        self._sync()
        started = time.perf_counter()
        last_report = 0.0
        self._stepping = True
        for step in range(steps):
            # On several devices the abort travels with the step's loss, so every rank stops at the same step.
            stop = aborted()
            if stop and self.group is None:
                raise ExecutorFailure('ERR_ABORTED', 'the agent aborted the round')
            lr = learning_rate_at(offset + step, peak, warmup, total, peak / 10)
            loss_value, norm, stop = self._step(model, params, windows[step], share, precision, recipe['gradClip'], stop)
            if stop:
                raise ExecutorFailure('ERR_ABORTED', 'the agent aborted the round')
            if math.isfinite(loss_value) and math.isfinite(norm.item()):
                for group in optimizer.param_groups:
                    group['lr'] = lr
                optimizer.step()
                if owned is not None:
                    self.group.broadcast_owned(params, owned)
                loss_curve.append(loss_value)
            else:
                # One poisoned batch must not wreck the weights; the coordinator's checks catch a node that keeps failing.
                skipped += 1
                loss_curve.append(None)
            # The model, not the optimizer: a sharded optimizer holds only its rank's parameters.
            model.zero_grad(set_to_none=True)
            now = time.perf_counter()
            if progress is not None and (now - last_report >= 0.1 or step == steps - 1):
                last_report = now
                progress({'step': step + 1, 'steps': steps, 'loss': loss_value if math.isfinite(loss_value) else None,
                          'tokensPerSecond': tokens_per_step * (step + 1) / max(now - started, 1e-9)})
        self._stepping = False
        self._sync()
        seconds = time.perf_counter() - started
        if self.device.type == 'cuda':
            # How the fit estimate compares with what the round really took (the logs of the first GPU runs).
            self.log(f'{self.device}: peak memory this round {torch.cuda.max_memory_allocated(self.device) / GIB:.1f} GiB allocated, '
                     f'{torch.cuda.max_memory_reserved(self.device) / GIB:.1f} GiB reserved; the fit check estimated {plan["needBytes"] / GIB:.1f} GiB '
                     f'(batch {batch} × seq {seq_len}, {precision}, checkpointing {"on" if plan["checkpointing"] else "off"})')
        save_started = time.perf_counter()
        if self.group is None or self.group.rank == 0:
            write_file(req['outFile'], {name: p.detach().float().cpu().numpy() for name, p in ordered})
        if sharded:
            self._save_state_shared(optimizer, ordered, os.path.join(req['stateDir'], STATE_FILE))
        elif self.group is None or self.group.rank == 0:
            self._save_state_async(optimizer, ordered)
        return {
            'lossCurve': loss_curve,
            'skippedSteps': skipped,
            'tokens': tokens_per_step * (steps - skipped),
            'computeSeconds': seconds,
            'ioSeconds': load_seconds + time.perf_counter() - save_started,
            'precision': precision,
            'checkpointing': plan['checkpointing'],
            'optimizer': self.optimizer_kind,
            'attention': 'sdpa' if model.model.layers[0].self_attn.use_sdpa else 'explicit',
            # Ranks without rows (a batch smaller than the node) trained nothing: not counted.
            'devices': 1 if self.group is None else min(self.group.world, batch),
            'shardedOptimizer': sharded,
        }

    def _save_state_async(self, optimizer, ordered):
        # The device→host copy happens now (the next round will move the moments again); the
        # disk write overlaps with the agent's upload and the next download.
        step, m, v = export_state(optimizer, ordered)
        path = self.state_path

        def write():
            try:
                write_state_file(path, step, m, v)
                self.state_signature = _file_signature(path)
            except OSError as err:
                self._writer_error = err

        self._writer = threading.Thread(target=write, name='state-writer', daemon=False)
        self._writer.start()

    def _save_state_shared(self, optimizer, ordered, path):
        """A sharded optimizer's state file: each rank writes its own range of m and v, rank 0 the
        header and the rename. Collective and on the round's path (every rank must have written
        before the rename), but each rank moves only its share."""
        mine, offset = self._stepped_parameters(ordered, True)
        step, m, v = export_state(optimizer, mine)
        size = sum(p.numel() for _, p in ordered)
        failed = 0.0
        if self.group.rank == 0:
            try:
                create_shared_state_file(path, size, step)
            except OSError as err:
                failed, error = 1.0, err
        # The barrier doubles as the partial file's existence check for the other ranks.
        if self.group.sum_values([failed])[0] == 0:
            try:
                write_state_part(path, size, step, offset, m, v)
            except OSError as err:
                failed, error = 1.0, err
        failures = self.group.sum_values([failed])[0]
        if failures == 0 and self.group.rank == 0:
            try:
                finish_shared_state_file(path)
                self.state_signature = _file_signature(path)
            except OSError as err:
                failed, error = 1.0, err
        if failures > 0 or failed:
            self._forget_optimizer()
            cause = error if failed else 'another rank could not write its part'
            raise ExecutorFailure('ERR_STATE_WRITE', f'could not save the inner optimizer state: {cause}; check free disk space in the data directory', retryable=True)

    def measure(self, config: LlamaConfig, batch, seq_len, steps, precision='auto', seed=0):
        """Training tokens per second on random weights and tokens (for ``barnraise-agent info`` and auto choice).

        On several devices every rank trains its share of each batch, so the figure is the node's.
        """
        self.flush()
        args = [config, batch, seq_len, steps, precision, seed]
        if self._leads():
            self.group.broadcast({'type': 'measure', 'args': args})
        return self._measure(*args)

    def _measure(self, config, batch, seq_len, steps, precision, seed):
        precision = resolve_precision(precision, self.device)
        start, end, share = self._rows(batch)
        plan = plan_fit(config, end - start, seq_len, precision, False, self.device, self.resident_bytes(), sharers=self._sharers())
        fits = plan['fits'] if self.group is None else self.group.sum_values([0.0 if plan['fits'] else 1.0])[0] == 0
        if not fits:
            raise ExecutorFailure('ERR_UNIT_TOO_LARGE', plan['reason'] if not plan['fits'] else 'another rank cannot fit the measurement (rank 0 says why)')
        model = self._ensure_model(config)
        self._forget_optimizer()
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in model.ordered_parameters():
                if p.dim() == 1:
                    p.fill_(1.0)
                else:
                    p.copy_(torch.randn(p.shape, generator=generator) * 0.02)
        params = list(model.parameters())
        optimizer, _ = make_adamw(params, 1e-3, (0.9, 0.95), 0.01, self.device)
        windows = torch.randint(0, config.vocab_size, (steps + 2, batch, seq_len + 1), generator=generator)[:, start:end].to(self.device)
        try:
            started = None
            self._stepping = True
            for step in range(steps + 2):
                if step == 2:  # two warm-up steps: allocator, kernels, lazy optimizer state
                    self._sync()
                    started = time.perf_counter()
                self._step(model, params, windows[step], share, precision, 1.0)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            self._sync()
            self._stepping = False
            seconds = time.perf_counter() - started
        except BaseException as err:
            if is_out_of_memory(err):
                release_frames(err)
            self._drop()
            if self._stepping and self.group is not None:
                self._stepping = False
                raise RanksBroken(f'rank {self.group.rank} ({self.device}) failed while measuring: {type(err).__name__}: {err}') from err
            if is_out_of_memory(err):
                raise ExecutorFailure('ERR_OUT_OF_MEMORY', f'{self.device} ran out of memory while measuring throughput') from None
            raise
        tokens_per_second = batch * seq_len * steps / seconds
        return {'tokensPerSecond': tokens_per_second, 'gflops': 6 * count_params(config) * tokens_per_second / 1e9,
                'precision': precision, 'seconds': seconds}

    def describe(self):
        """Device and features, for the hello frame."""
        return {'device': str(self.device), 'features': features(self.device)}
