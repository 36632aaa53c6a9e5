package io.leasehold.flink;

import io.leasehold.client.Checkpoints;
import io.leasehold.client.ClusterClient;
import io.leasehold.client.Fence;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executor;
import org.apache.flink.api.common.JobID;
import org.apache.flink.core.execution.RecoveryClaimMode;
import org.apache.flink.runtime.checkpoint.CheckpointIDCounter;
import org.apache.flink.runtime.checkpoint.CheckpointRecoveryFactory;
import org.apache.flink.runtime.checkpoint.CompletedCheckpoint;
import org.apache.flink.runtime.checkpoint.CompletedCheckpointStore;
import org.apache.flink.runtime.checkpoint.LeaseholdCheckpointSubsumption;
import org.apache.flink.runtime.state.SharedStateRegistryFactory;
import org.apache.flink.util.InstantiationUtil;

/**
 * Recovers a job's completed checkpoints from leasehold: each stored checkpoint carries Flink's
 * {@link CompletedCheckpoint} itself (Java-serialized, base64, as metadata), so no
 * {@code high-availability.storageDir} is needed. The recovered list goes through Flink's own
 * subsumption once more, dropping (without discarding) any checkpoint that Flink had already
 * subsumed but leasehold still held (see {@link LeaseholdCompletedCheckpointStore}).
 */
final class LeaseholdCheckpointRecoveryFactory implements CheckpointRecoveryFactory {
    private final ClusterClient cluster;
    private final Fence fence;

    LeaseholdCheckpointRecoveryFactory(ClusterClient cluster, Fence fence) {
        this.cluster = cluster;
        this.fence = fence;
    }

    @Override
    public CompletedCheckpointStore createRecoveredCompletedCheckpointStore(JobID jobId, int maxNumberOfCheckpointsToRetain,
            SharedStateRegistryFactory sharedStateRegistryFactory, Executor ioExecutor, RecoveryClaimMode recoveryClaimMode)
            throws Exception {
        Checkpoints store = cluster.checkpoints(jobId.toHexString());
        List<Long> held = new ArrayList<>();
        ArrayDeque<CompletedCheckpoint> recovered = new ArrayDeque<>();
        ClassLoader loader = Thread.currentThread().getContextClassLoader();
        for (Checkpoints.Checkpoint c : store.all()) {
            held.add(c.checkpointId());
            if (c.metadata() == null) {
                throw new IllegalStateException("checkpoint " + c.checkpointId() + " of job " + jobId + " in leasehold was not written by Flink");
            }
            recovered.add(InstantiationUtil.deserializeObject(c.metadata(), loader));
        }
        LeaseholdCheckpointSubsumption.subsume(recovered, maxNumberOfCheckpointsToRetain, c -> {});
        return new LeaseholdCompletedCheckpointStore(store, fence, maxNumberOfCheckpointsToRetain, recovered, held,
                sharedStateRegistryFactory.create(ioExecutor, recovered, recoveryClaimMode), ioExecutor);
    }

    @Override
    public CheckpointIDCounter createCheckpointIDCounter(JobID jobId) {
        return new LeaseholdCheckpointIdCounter(cluster.checkpoints(jobId.toHexString()), fence);
    }
}
