package org.apache.flink.runtime.checkpoint;

import java.util.Deque;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * Flink's own subsumption rule ({@link CheckpointSubsumeHelper}, package-private), opened to the
 * leasehold checkpoint store so that it keeps exactly what Flink's DefaultCompletedCheckpointStore
 * keeps: the newest {@code numRetain}, never the latest checkpoint, and never the latest one that
 * is not a savepoint while a newer savepoint exists (incremental state may build on it). It lives
 * in Flink's package because the helper is not public; the plugin jar sits in Flink's lib/, on the
 * same class loader as Flink's runtime.
 */
public final class LeaseholdCheckpointSubsumption {
    private LeaseholdCheckpointSubsumption() {}

    public static Optional<CompletedCheckpoint> subsume(
            Deque<CompletedCheckpoint> checkpoints, int numRetain, Consumer<CompletedCheckpoint> action) throws Exception {
        return CheckpointSubsumeHelper.subsume(checkpoints, numRetain, action::accept);
    }
}
