package io.leasehold.flink;

import io.leasehold.client.Checkpoints;
import io.leasehold.client.Fence;
import io.leasehold.client.LeaseholdException;
import java.util.concurrent.CompletableFuture;
import org.apache.flink.api.common.JobStatus;
import org.apache.flink.runtime.checkpoint.CheckpointIDCounter;

/** A job's checkpoint id counter on leasehold, fenced by the leadership. */
final class LeaseholdCheckpointIdCounter implements CheckpointIDCounter {
    private final Checkpoints store;
    private final Fence fence;

    LeaseholdCheckpointIdCounter(Checkpoints store, Fence fence) {
        this.store = store;
        this.fence = fence;
    }

    @Override
    public void start() {}

    @Override
    public CompletableFuture<Void> shutdown(JobStatus jobStatus) {
        if (jobStatus.isGloballyTerminalState()) {
            try {
                store.shutdownCounter(jobStatus.name(), fence);
            } catch (RuntimeException e) {
                return CompletableFuture.failedFuture(e);
            }
        }
        return CompletableFuture.completedFuture(null);
    }

    @Override
    public long getAndIncrement() {
        return store.incrementCounter(fence);
    }

    @Override
    public long get() {
        return store.counter();
    }

    /**
     * Sets the next id. leasehold never lowers a counter: asked to (a restore from a savepoint
     * older than the job's own checkpoints), it keeps the higher value, so ids still increase.
     */
    @Override
    public void setCount(long newId) {
        try {
            store.setCounter(newId, fence);
        } catch (LeaseholdException.Conflict e) {
            if (!"CheckpointIdNotIncreasing".equals(e.code())) throw e;
        }
    }
}
