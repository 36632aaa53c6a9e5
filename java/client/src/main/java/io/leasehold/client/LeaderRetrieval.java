package io.leasehold.client;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Follows the leaders of some components, on the cluster's watch that every retrieval of the
 * same {@link LeaseholdClient} shares ({@link ClusterWatch}: one websocket, resumed with {@code
 * since} after any disconnect, long-polls when no websocket can be had). Changes at or below the
 * last index seen are skipped, so the listener sees each component's leader change once, in
 * index order.
 */
public final class LeaderRetrieval implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(LeaderRetrieval.class.getName());

    /** Called on the retrieval's own thread, one call at a time, only when a component's leader changed. */
    public interface Listener {
        void leader(String component, Leader leaderOrNull);
    }

    private final ClusterClient cluster;
    private final List<String> components;
    private final Listener listener;
    private final ExecutorService events = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "leasehold-retrieval");
        t.setDaemon(true);
        return t;
    });
    private final Map<String, Leader> known = new HashMap<>();
    private volatile long lastIndex = -1;
    private ClusterWatch watch;
    private boolean closed;

    LeaderRetrieval(ClusterClient cluster, List<String> components, Listener listener) {
        this.cluster = cluster;
        this.components = List.copyOf(components);
        this.listener = listener;
    }

    public synchronized LeaderRetrieval start() {
        if (watch != null || closed) throw new IllegalStateException(closed ? "closed" : "started already");
        watch = cluster.client.acquire(cluster);
        watch.add(this);
        return this;
    }

    /** The last change index seen, or -1. */
    public long index() {
        return lastIndex;
    }

    /** True once the cluster's watch has fallen back to long-polls. */
    public synchronized boolean longPolling() {
        return watch != null && watch.longPolling();
    }

    /** The watch's leaders at {@code index} (called on its thread): the watched components absent
     * have none. Its index replaces ours, as the server's snapshot does (a Redis that lost its data
     * starts again lower). */
    void snapshot(long index, Map<String, Leader> leaders) {
        run(() -> {
            for (String c : components) update(c, leaders.get(c));
            lastIndex = index;
        });
    }

    /** A change the watch saw (called on its thread, in index order). */
    void change(long index, String component, Leader leader) {
        if (!components.contains(component)) return;
        run(() -> {
            if (index <= lastIndex) return;
            update(component, leader);
            lastIndex = index;
        });
    }

    private void run(Runnable task) {
        try {
            events.execute(task);
        } catch (java.util.concurrent.RejectedExecutionException e) {
            // closed
        }
    }

    private void update(String component, Leader leader) {
        // The first state of each component is told even when it is "no leader".
        boolean seen = known.containsKey(component);
        Leader before = known.put(component, leader);
        if (seen && same(before, leader)) return;
        try {
            listener.leader(component, leader);
        } catch (RuntimeException e) {
            LOG.log(Level.WARNING, "retrieval listener failed", e);
        }
    }

    private static boolean same(Leader a, Leader b) {
        if (a == null || b == null) return a == b;
        return Objects.equals(a.sessionId(), b.sessionId()) && Objects.equals(a.address(), b.address())
                && a.fencingToken() == b.fencingToken();
    }

    @Override
    public void close() {
        ClusterWatch w;
        synchronized (this) {
            if (closed) return;
            closed = true;
            w = watch;
        }
        if (w != null) {
            w.remove(this);
            cluster.client.release(w);
        }
        events.shutdownNow();
    }
}
