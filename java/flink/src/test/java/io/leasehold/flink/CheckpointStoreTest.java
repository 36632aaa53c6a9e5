package io.leasehold.flink;

import static org.junit.jupiter.api.Assertions.*;

import io.leasehold.client.ClusterClient;
import io.leasehold.client.Fence;
import io.leasehold.client.LeaseholdClient;
import io.leasehold.client.LeaseholdException;
import io.leasehold.client.testing.LeaseholdServer;
import java.util.HashMap;
import java.util.List;
import java.util.concurrent.Executor;
import org.apache.flink.api.common.JobID;
import org.apache.flink.api.common.JobStatus;
import org.apache.flink.core.execution.RecoveryClaimMode;
import org.apache.flink.core.execution.SavepointFormatType;
import org.apache.flink.runtime.checkpoint.CheckpointProperties;
import org.apache.flink.runtime.checkpoint.CheckpointRetentionPolicy;
import org.apache.flink.runtime.checkpoint.CheckpointsCleaner;
import org.apache.flink.runtime.checkpoint.CompletedCheckpoint;
import org.apache.flink.runtime.checkpoint.CompletedCheckpointStore;
import org.apache.flink.runtime.state.CompletedCheckpointStorageLocation;
import org.apache.flink.runtime.state.SharedStateRegistry;
import org.apache.flink.runtime.state.StreamStateHandle;
import org.apache.flink.runtime.state.memory.ByteStreamStateHandle;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The checkpoint store and the id counter against a real leasehold: Flink's subsumption rules
 * hold exactly (savepoints included), and what a new leader recovers is what Flink kept.
 */
class CheckpointStoreTest {
    @RegisterExtension
    static LeaseholdServer server = new LeaseholdServer();

    static final Executor DIRECT = Runnable::run;
    ClusterClient cluster;
    JobID job;
    Fence fence;

    @BeforeEach
    void lead(org.junit.jupiter.api.TestInfo info) {
        cluster = new LeaseholdClient(server.url(), null).cluster("ckpt-" + info.getTestMethod().orElseThrow().getName());
        job = new JobID();
        // A job manager's own lease fences the job's checkpoints when no leadership lives.
        fence = Fence.of(cluster.campaign("jobmanager/" + job.toHexString(), "jm", 60_000, "x").leader().fencingToken());
    }

    record Location(String pointer) implements CompletedCheckpointStorageLocation {
        @Override
        public String getExternalPointer() {
            return pointer;
        }

        @Override
        public StreamStateHandle getMetadataHandle() {
            return new ByteStreamStateHandle(pointer, new byte[] {1});
        }

        @Override
        public void disposeStorageLocation() {}
    }

    CompletedCheckpoint checkpoint(long id, boolean savepoint) {
        CheckpointProperties props = savepoint
                ? CheckpointProperties.forSavepoint(true, SavepointFormatType.CANONICAL)
                : CheckpointProperties.forCheckpoint(CheckpointRetentionPolicy.NEVER_RETAIN_AFTER_TERMINATION);
        return new CompletedCheckpoint(job, id, id * 1000, id * 1000 + 1, new HashMap<>(), null, props,
                new Location("file:///ckpt/" + job + "/chk-" + id), null);
    }

    CompletedCheckpointStore recover(int retain) throws Exception {
        return new LeaseholdCheckpointRecoveryFactory(cluster, fence).createRecoveredCompletedCheckpointStore(
                job, retain, SharedStateRegistry.DEFAULT_FACTORY, DIRECT, RecoveryClaimMode.DEFAULT);
    }

    static List<Long> ids(List<CompletedCheckpoint> l) {
        return l.stream().map(CompletedCheckpoint::getCheckpointID).toList();
    }

    List<Long> held() {
        return cluster.checkpoints(job.toHexString()).all().stream().map(c -> c.checkpointId()).toList();
    }

    @Test
    void subsumesAsFlinkDoesAroundSavepoints() throws Exception {
        CheckpointsCleaner cleaner = new CheckpointsCleaner();
        CompletedCheckpointStore store = recover(1);
        assertNull(store.addCheckpointAndSubsumeOldestOne(checkpoint(1, false), cleaner, () -> {}));
        assertEquals(1, store.addCheckpointAndSubsumeOldestOne(checkpoint(2, false), cleaner, () -> {}).getCheckpointID());
        assertEquals(List.of(2L), held());
        // A savepoint does not subsume the latest checkpoint: incremental state may build on it.
        assertNull(store.addCheckpointAndSubsumeOldestOne(checkpoint(3, true), cleaner, () -> {}));
        assertEquals(List.of(2L, 3L), ids(store.getAllCheckpoints()));
        assertEquals(List.of(2L, 3L), held());
        // A newer savepoint subsumes the older one, still not checkpoint 2.
        assertEquals(3, store.addCheckpointAndSubsumeOldestOne(checkpoint(4, true), cleaner, () -> {}).getCheckpointID());
        assertEquals(List.of(2L, 4L), ids(store.getAllCheckpoints()));
        // leasehold dropped savepoint 3 in the same write: it holds Flink's set exactly.
        assertEquals(List.of(2L, 4L), held());

        // A new leader recovers exactly what Flink kept.
        CompletedCheckpointStore recovered = recover(1);
        assertEquals(List.of(2L, 4L), ids(recovered.getAllCheckpoints()));
        assertEquals(4, recovered.getLatestCheckpoint().getCheckpointID());
        assertEquals("file:///ckpt/" + job + "/chk-4", recovered.getLatestCheckpoint().getExternalPointer());
        assertTrue(recovered.getLatestCheckpoint().getProperties().isSavepoint());

        // A checkpoint subsumes both.
        assertEquals(4, recovered.addCheckpointAndSubsumeOldestOne(checkpoint(5, false), cleaner, () -> {}).getCheckpointID());
        assertEquals(List.of(5L), ids(recovered.getAllCheckpoints()));
        assertEquals(List.of(5L), held());

        recovered.shutdown(JobStatus.FINISHED, cleaner);
        assertEquals(List.of(), held());
    }

    @Test
    void retainsAsManyAsFlinkAsks() throws Exception {
        CheckpointsCleaner cleaner = new CheckpointsCleaner();
        CompletedCheckpointStore store = recover(3);
        for (long id = 1; id <= 5; id++) store.addCheckpointAndSubsumeOldestOne(checkpoint(id, false), cleaner, () -> {});
        assertEquals(List.of(3L, 4L, 5L), held());
        assertEquals(List.of(3L, 4L, 5L), ids(recover(3).getAllCheckpoints()));
        // Suspending (not globally terminal) keeps them for the next leader.
        store.shutdown(JobStatus.SUSPENDED, cleaner);
        assertEquals(List.of(3L, 4L, 5L), held());
    }

    @Test
    void staleLeaderWritesNothing() throws Exception {
        CompletedCheckpointStore store = recover(1);
        store.addCheckpointAndSubsumeOldestOne(checkpoint(1, false), new CheckpointsCleaner(), () -> {});
        // Another job manager takes the job over: the first one's token fences nothing.
        cluster.resign("jobmanager/" + job.toHexString(), "jm", cluster.leader("jobmanager/" + job.toHexString()).sessionId());
        cluster.campaign("jobmanager/" + job.toHexString(), "jm-2", 60_000, "y");
        assertThrows(LeaseholdException.Fencing.class,
                () -> store.addCheckpointAndSubsumeOldestOne(checkpoint(2, false), new CheckpointsCleaner(), () -> {}));
        assertEquals(List.of(1L), held());
        assertEquals(List.of(1L), ids(store.getAllCheckpoints()), "Flink's view unchanged by a refused write");
    }

    @Test
    void idCounter() throws Exception {
        var counter = new LeaseholdCheckpointRecoveryFactory(cluster, fence).createCheckpointIDCounter(job);
        counter.start();
        assertEquals(1, counter.getAndIncrement());
        assertEquals(2, counter.getAndIncrement());
        assertEquals(3, counter.get());
        counter.setCount(10);
        assertEquals(10, counter.get());
        counter.setCount(4); // never lowered: ids keep increasing
        assertEquals(10, counter.get());
        counter.shutdown(JobStatus.FINISHED).get();
        assertEquals(1, cluster.checkpoints(job.toHexString()).counter(), "removed: a new counter starts at 1");
    }
}
