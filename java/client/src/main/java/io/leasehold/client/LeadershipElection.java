package io.leasehold.client;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Duration;
import java.util.UUID;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * One leadership per process on leasehold's {@code leadership} routes: campaigns, renews every
 * TTL/3, publishes per-component addresses, and steps down safely.
 *
 * <p>A standby does not poll: while another process leads it long-polls {@code GET leaders},
 * which the server answers when the cluster's index moves. The end of a leadership (resigned,
 * revoked, or expired: the server detects an expiry within 250 ms) turns every component it
 * published leaderless in that one push, and the standby campaigns at once. A long-poll that
 * ends with no change ({@code fallbackMs}) is followed by a campaign anyway: the fallback for a
 * push the server's view missed, and for a leadership that published no component (its end
 * changes no leader, so nothing is pushed).
 *
 * <p>Safe step-down: a lease is taken to last from when the request that won or renewed it was
 * <em>sent</em> (monotonic clock), for its TTL, less a margin. {@link #isLeader()} and
 * {@link #token()} check that clock on every call, and a timer revokes locally ({@code
 * unconfirmed}) at that instant when no renewal was confirmed in time, whether or not the renewal
 * request is still hanging. A {@code 409 NotLeader} revokes at once ({@code lost}). After any
 * revocation it resigns what it may still hold and campaigns again, so that a new grant comes
 * with a new session and a new fencing token.
 *
 * <p>While it leads, it renews over the client's renewal stream ({@link RenewalStream}, one
 * websocket for every leadership of the client), or over HTTP while the stream cannot be had or
 * when the client was built with {@code renewalStream(false)}; the answers are the same either
 * way. A stream cut before the answer is an unknown outcome, retried as a 503 is; the server's
 * {@code lost} push revokes at once ({@code lost}). A renewal answered only after the local
 * deadline is distrusted, over either: the leadership was revoked ({@code unconfirmed}) when the
 * deadline passed, or is revoked now.
 */
public final class LeadershipElection implements Fence, AutoCloseable {
    private static final Logger LOG = Logger.getLogger(LeadershipElection.class.getName());

    /**
     * Callbacks, called on the election's own events thread, one at a time, granted and revoked
     * alternating. A revocation is told as soon as it is known, even while a request hangs.
     */
    public interface Listener {
        void granted(Leadership leadership);

        /** @param reason {@code lost} (409), {@code unconfirmed} (no renewal in time), {@code resigned} */
        void revoked(Leadership leadership, String reason);
    }

    /**
     * @param retryMs    the pause after a request that failed, before trying again
     * @param fallbackMs the longest a standby waits for a push before it campaigns anyway (the
     *                   long-poll's wait; the server takes at most 5 minutes)
     */
    public record Options(String contenderId, long ttlMs, long renewIntervalMs, long marginMs, long retryMs, long fallbackMs) {
        public static Options of(String contenderId, long ttlMs) {
            return new Options(contenderId, ttlMs, ttlMs / 3, Math.max(100, ttlMs / 10),
                    Math.max(100, Math.min(1000, ttlMs / 10)), Math.max(1000, ttlMs));
        }
    }

    /** The server's longest long-poll wait. */
    private static final long MAX_WAIT_MS = 5 * 60_000;

    private final ClusterClient cluster;
    private final Options o;
    private final ScheduledExecutorService loop;
    private final ScheduledExecutorService timer;
    /** Runs the listener's callbacks, in the order the state changed, whatever thread changed it. */
    private final java.util.concurrent.ExecutorService events;
    private final Object lock = new Object();
    private Listener listener;
    // guarded by lock
    private Leadership current;
    private long validUntilNanos;
    private boolean closed;
    private ScheduledFuture<?> deadline;
    private boolean started;
    /** Ends this election's use of the renewal stream (while it leads), and the watch of its {@code lost}. */
    private Runnable unuseStream;
    private Runnable unwatchLost;
    /** The cluster's change index as the standby last read it, or -1 (the loop's thread only). */
    private long index = -1;

    LeadershipElection(ClusterClient cluster, Options options) {
        this.cluster = cluster;
        this.o = options.contenderId() == null
                ? new Options(UUID.randomUUID().toString(), options.ttlMs(), options.renewIntervalMs(), options.marginMs(),
                        options.retryMs(), options.fallbackMs())
                : options;
        this.loop = Executors.newSingleThreadScheduledExecutor(r -> daemon(r, "leasehold-election"));
        this.timer = Executors.newSingleThreadScheduledExecutor(r -> daemon(r, "leasehold-election-deadline"));
        this.events = Executors.newSingleThreadExecutor(r -> daemon(r, "leasehold-election-events"));
    }

    private static Thread daemon(Runnable r, String name) {
        Thread t = new Thread(r, name);
        t.setDaemon(true);
        return t;
    }

    public String contenderId() {
        return o.contenderId();
    }

    public synchronized LeadershipElection start(Listener listener) {
        if (started) throw new IllegalStateException("started already");
        started = true;
        this.listener = listener;
        loop.execute(this::campaign);
        return this;
    }

    /** The leadership while it is valid by the local clock, else null. */
    public Leadership leadership() {
        synchronized (lock) {
            if (current == null || System.nanoTime() - validUntilNanos >= 0) return null;
            return current;
        }
    }

    public boolean isLeader() {
        return leadership() != null;
    }

    /** The fencing token of the valid leadership; {@link LeaseholdException.NotLeader} without one, nothing sent. */
    @Override
    public String token() {
        Leadership l = leadership();
        if (l == null) throw new LeaseholdException.NotLeader("NotLeader", "this process does not lead cluster " + cluster.id(), 0, null);
        return Long.toString(l.token());
    }

    /**
     * Publishes a component's address under the current leadership, if it is still {@code sessionId}.
     * @return false when this process no longer holds that session (nothing was published)
     */
    public boolean publish(String sessionId, String component, String address) {
        Leadership l = leadership();
        if (l == null || !l.sessionId().equals(sessionId)) return false;
        try {
            cluster.publish(sessionId, component, address);
            return true;
        } catch (LeaseholdException.NotLeader e) {
            revoke(l, "lost");
            return false;
        }
    }

    public void unpublish(String component) {
        Leadership l = leadership();
        if (l == null) return;
        try {
            cluster.unpublish(l.sessionId(), component);
        } catch (LeaseholdException.NotLeader e) {
            revoke(l, "lost");
        }
    }

    private void campaign() {
        synchronized (lock) {
            if (closed || current != null) return;
        }
        long sent = System.nanoTime();
        try {
            ClusterClient.Campaign c = cluster.campaignLeadership(o.contenderId(), o.ttlMs(), timeout());
            if (c.granted()) {
                Leadership l = c.leadership();
                boolean resign;
                synchronized (lock) {
                    resign = closed;
                    if (!closed) {
                        current = l;
                        // A regrant (same contender) may have less left than its TTL.
                        extend(sent, Math.min(l.ttlMs(), Math.max(l.remainingMs(), 0)));
                        events.execute(() -> listener.granted(l));
                        // Opened now, the stream is likely open for the first renewal, a third of a TTL on.
                        RenewalStream stream = cluster.client.renewals();
                        if (stream != null && unuseStream == null) unuseStream = stream.use();
                    }
                }
                if (resign) {
                    safeResign(l);
                    return;
                }
                LOG.fine(() -> "granted " + l);
                loop.schedule(this::renew, o.renewIntervalMs(), TimeUnit.MILLISECONDS);
                return;
            }
            awaitVacancy();
            return;
        } catch (LeaseholdException e) {
            LOG.log(Level.FINE, "campaign failed", e);
        } catch (RuntimeException e) {
            LOG.log(Level.WARNING, "campaign failed", e);
        }
        retryCampaign(o.retryMs());
    }

    /**
     * Another process leads: waits, on the loop's thread (a standby has nothing else to do
     * there), for the server to push a change of the cluster's leaders, and campaigns when no
     * component has a leader any more, or when {@code fallbackMs} passed with no change.
     *
     * <p>The index it waits from was read before the campaign that failed (or this read is the
     * first, and shows the leaders as they are now), so an end that came in between is answered
     * at once. Each campaign follows a change or a fallback's wait, never another campaign
     * directly: a leadership that has not published yet costs one campaign, not a loop.
     */
    private void awaitVacancy() {
        synchronized (lock) {
            if (closed) return;
        }
        ClusterClient.Snapshot s;
        boolean timedOut;
        try {
            if (index < 0) {
                s = cluster.leaders();
                timedOut = false;
            } else {
                s = cluster.leaders(index, Duration.ofMillis(Math.min(MAX_WAIT_MS, o.fallbackMs())));
                timedOut = s.index() <= index;
            }
        } catch (RuntimeException e) {
            LOG.log(Level.FINE, "waiting for the leadership to end failed", e);
            later(this::awaitVacancy, o.retryMs());
            return;
        }
        index = Math.max(index, s.index());
        boolean led = s.leaders().values().stream().anyMatch(java.util.Objects::nonNull);
        later(led && !timedOut ? this::awaitVacancy : this::campaign, 0);
    }

    /** Runs {@code r} on the loop unless the election is closed (or closing: then nothing). */
    private void later(Runnable r, long ms) {
        synchronized (lock) {
            if (closed) return;
        }
        try {
            loop.schedule(r, ms, TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.RejectedExecutionException e) {
            // close() shut the loop down after the check above
        }
    }

    private void retryCampaign(long ms) {
        later(this::campaign, ms);
    }

    private Duration timeout() {
        return Duration.ofMillis(Math.max(200, o.renewIntervalMs()));
    }

    /** Sets the local deadline from when the confirming request was sent. Holds lock. */
    private void extend(long sentNanos, long leaseMs) {
        validUntilNanos = sentNanos + TimeUnit.MILLISECONDS.toNanos(leaseMs - o.marginMs());
        if (deadline != null) deadline.cancel(false);
        Leadership l = current;
        long delay = validUntilNanos - System.nanoTime();
        // On the timer's own thread: the loop's may be stuck in a renewal that will never be answered.
        deadline = timer.schedule(() -> expireIfDue(l), Math.max(0, delay), TimeUnit.NANOSECONDS);
    }

    private void expireIfDue(Leadership l) {
        synchronized (lock) {
            if (current != l || System.nanoTime() - validUntilNanos < 0) return;
        }
        revoke(l, "unconfirmed");
    }

    private void renew() {
        Leadership l;
        synchronized (lock) {
            l = current;
            if (closed || l == null) return;
        }
        long sent = System.nanoTime();
        try {
            Leadership r = renewOnce(l);
            boolean late;
            synchronized (lock) {
                if (current != l) return;
                late = System.nanoTime() - validUntilNanos >= 0;
                if (!late) extend(sent, r.ttlMs());
            }
            if (late) {
                // The deadline passed while the renewal was under way: distrusted, as the timer would.
                revoke(l, "unconfirmed");
                return;
            }
            loop.schedule(this::renew, o.renewIntervalMs(), TimeUnit.MILLISECONDS);
        } catch (LeaseholdException.NotLeader | LeaseholdException.Auth e) {
            revoke(l, "lost");
        } catch (RuntimeException e) {
            LOG.log(Level.FINE, "renewal failed; retrying until the lease may have ended", e);
            // The local deadline timer revokes when the lease may have ended; until then, retry.
            loop.schedule(this::renew, Math.max(50, o.renewIntervalMs() / 4), TimeUnit.MILLISECONDS);
        }
    }

    /** One renewal of {@code l}: over the renewal stream when it is open, else over HTTP. */
    private Leadership renewOnce(Leadership l) {
        RenewalStream stream = cluster.client.renewals();
        if (stream != null) {
            ObjectNode lease = ClusterClient.obj().put("clusterId", cluster.id())
                    .put("leadership", true).put("contenderId", o.contenderId()).put("sessionId", l.sessionId());
            JsonNode answer = stream.renew(lease, o.ttlMs(), timeout());
            if (answer != null) {
                synchronized (lock) {
                    // Renewed over the stream: the server's push of its end revokes at once.
                    if (current == l && unwatchLost == null) unwatchLost = stream.watch(l.sessionId(), () -> revoke(l, "lost"));
                }
                return Leadership.from(answer.get("leadership"));
            }
        }
        return cluster.renewLeadership(o.contenderId(), l.sessionId(), o.ttlMs(), timeout());
    }

    /** Ends leadership {@code l} locally at once (any thread), tells the listener, then resigns and campaigns again on the loop. */
    private void revoke(Leadership l, String reason) {
        synchronized (lock) {
            if (current != l || l == null) return;
            current = null;
            if (deadline != null) deadline.cancel(false);
            events.execute(() -> listener.revoked(l, reason));
            if (unwatchLost != null) unwatchLost.run();
            unwatchLost = null;
            // A standby renews nothing: no stream for it (the process's other users keep theirs).
            if (unuseStream != null) unuseStream.run();
            unuseStream = null;
        }
        LOG.info(() -> "leadership " + l.sessionId() + " revoked: " + reason);
        if (!"resigned".equals(reason)) {
            // What this process may still hold must go, so that a new grant brings a new token.
            loop.execute(() -> {
                safeResign(l);
                retryCampaign(o.retryMs());
            });
        }
    }

    private void safeResign(Leadership l) {
        try {
            cluster.resignLeadership(o.contenderId(), l.sessionId());
        } catch (RuntimeException e) {
            LOG.log(Level.FINE, "resign failed", e);
        }
    }

    /** Stops campaigning, says revoked, resigns what it holds. */
    @Override
    public void close() {
        Leadership l;
        synchronized (lock) {
            if (closed) return;
            closed = true;
            l = current;
        }
        if (l != null) {
            revoke(l, "resigned");
            safeResign(l);
        }
        loop.shutdownNow();
        timer.shutdownNow();
        events.shutdown();
        try {
            // The revocation is told before close returns.
            events.awaitTermination(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
