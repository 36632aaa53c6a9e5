package io.leasehold.flink;

import io.leasehold.client.Checkpoints;
import io.leasehold.client.Fence;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.flink.api.common.JobStatus;
import org.apache.flink.runtime.checkpoint.AbstractCompleteCheckpointStore;
import org.apache.flink.runtime.checkpoint.CheckpointsCleaner;
import org.apache.flink.runtime.checkpoint.CompletedCheckpoint;
import org.apache.flink.runtime.checkpoint.LeaseholdCheckpointSubsumption;
import org.apache.flink.runtime.state.SharedStateRegistry;
import org.apache.flink.util.InstantiationUtil;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Flink's completed checkpoint store on leasehold's checkpoints, with Flink's rules exactly: it
 * does what Flink's {@code DefaultCompletedCheckpointStore} does (same subsumption, through Flink's
 * own helper; the subsumed checkpoints handed to Flink's {@link CheckpointsCleaner}, which discards
 * their state; on shutdown in a globally terminal state every checkpoint removed and discarded as
 * {@code shouldBeDiscardedOnShutdown} says), with leasehold in place of ZooKeeper plus storageDir.
 *
 * <p>Before each add this store works out, on a copy, what Flink will keep, and asks leasehold,
 * in the same write, to keep that many and to drop the older ones Flink drops out of order (the
 * savepoints Flink subsumes while it keeps an older checkpoint): leasehold holds Flink's set
 * exactly.
 */
final class LeaseholdCompletedCheckpointStore extends AbstractCompleteCheckpointStore {
    private static final Logger LOG = LoggerFactory.getLogger(LeaseholdCompletedCheckpointStore.class);

    private final Checkpoints store;
    private final Fence fence;
    private final int maxRetained;
    private final ArrayDeque<CompletedCheckpoint> completed;
    /** The ids leasehold holds, oldest first (a superset of {@code completed}'s). */
    private final List<Long> held;
    private final Executor ioExecutor;
    private final AtomicBoolean running = new AtomicBoolean(true);

    LeaseholdCompletedCheckpointStore(Checkpoints store, Fence fence, int maxRetained, Collection<CompletedCheckpoint> recovered,
            List<Long> held, SharedStateRegistry registry, Executor ioExecutor) {
        super(registry);
        if (maxRetained < 1) throw new IllegalArgumentException("Must retain at least one checkpoint.");
        this.store = store;
        this.fence = fence;
        this.maxRetained = maxRetained;
        this.completed = new ArrayDeque<>(recovered);
        this.held = new ArrayList<>(held);
        this.ioExecutor = ioExecutor;
    }

    @Override
    public CompletedCheckpoint addCheckpointAndSubsumeOldestOne(CompletedCheckpoint checkpoint, CheckpointsCleaner cleaner,
            Runnable postCleanup) throws Exception {
        if (!running.get()) throw new IllegalStateException("Checkpoint store has already been shutdown.");
        // What Flink will keep, worked out on a copy, decides how many leasehold keeps.
        ArrayDeque<CompletedCheckpoint> after = new ArrayDeque<>(completed);
        after.addLast(checkpoint);
        LeaseholdCheckpointSubsumption.subsume(after, maxRetained, c -> {});
        List<Long> nowHeld = new ArrayList<>();
        for (CompletedCheckpoint c : after) nowHeld.add(c.getCheckpointID());
        nowHeld.sort(null);
        // Held ids Flink drops although newer ones below the retention stay: named, not trimmed.
        long oldestKept = nowHeld.get(0);
        List<Long> subsume = new ArrayList<>();
        for (long id : held) if (id > oldestKept && !nowHeld.contains(id)) subsume.add(id);

        Map<String, String> props = new LinkedHashMap<>();
        props.put("checkpointType", checkpoint.getProperties().getCheckpointType().getName());
        props.put("savepoint", Boolean.toString(checkpoint.getProperties().isSavepoint()));
        props.put("stateSize", Long.toString(checkpoint.getStateSize()));
        store.add(checkpoint.getCheckpointID(), checkpoint.getTimestamp(), checkpoint.getExternalPointer(),
                InstantiationUtil.serializeObject(checkpoint), props, nowHeld.size(), subsume, fence);
        held.clear();
        held.addAll(nowHeld);

        completed.addLast(checkpoint);
        Optional<CompletedCheckpoint> subsumed = LeaseholdCheckpointSubsumption.subsume(completed, maxRetained,
                cleaner::addSubsumedCheckpoint);
        if (!completed.isEmpty()) {
            long lowest = completed.peekFirst().getCheckpointID();
            for (CompletedCheckpoint c : completed) lowest = Math.min(lowest, c.getCheckpointID());
            cleaner.cleanSubsumedCheckpoints(lowest, getSharedStateRegistry().unregisterUnusedState(lowest), postCleanup, ioExecutor);
        }
        return subsumed.orElse(null);
    }

    @Override
    public List<CompletedCheckpoint> getAllCheckpoints() {
        return new ArrayList<>(completed);
    }

    @Override
    public int getNumberOfRetainedCheckpoints() {
        return completed.size();
    }

    @Override
    public int getMaxNumberOfRetainedCheckpoints() {
        return maxRetained;
    }

    @Override
    public boolean requiresExternalizedCheckpoints() {
        return true;
    }

    @Override
    public void shutdown(JobStatus jobStatus, CheckpointsCleaner cleaner) throws Exception {
        super.shutdown(jobStatus, cleaner);
        if (!running.compareAndSet(true, false)) return;
        if (jobStatus.isGloballyTerminalState()) {
            LOG.info("Shutting down");
            // leasehold forgets them all in one write; their state goes as Flink says.
            store.shutdown(jobStatus.name(), fence);
            long lowestRetained = Long.MAX_VALUE;
            for (CompletedCheckpoint c : completed) {
                boolean discard = c.shouldBeDiscardedOnShutdown(jobStatus);
                cleaner.cleanCheckpoint(c, discard, () -> {}, ioExecutor);
                if (!discard) lowestRetained = Math.min(lowestRetained, c.getCheckpointID());
            }
            completed.clear();
            held.clear();
            cleaner.cleanSubsumedCheckpoints(lowestRetained, getSharedStateRegistry().unregisterUnusedState(lowestRetained),
                    () -> {}, ioExecutor);
        } else {
            LOG.info("Suspending");
            completed.clear();
        }
    }
}
