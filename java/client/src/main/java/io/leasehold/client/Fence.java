package io.leasehold.client;

/**
 * What a store write sends as {@code X-Fencing-Token}: the current token of the leader that owns
 * the data. An election is a fence: it answers its token only while it still leads by its own
 * clock, and throws {@link LeaseholdException.NotLeader} otherwise, before anything is sent.
 */
@FunctionalInterface
public interface Fence {
    String token();

    static Fence of(long token) {
        String t = Long.toString(token);
        return () -> t;
    }

    /** Admin only: an unfenced write. */
    static Fence override() {
        return () -> "override";
    }
}
