package io.leasehold.flink;

import io.leasehold.client.LeaseholdException;
import io.leasehold.client.Leadership;
import io.leasehold.client.LeadershipElection;
import java.lang.management.ManagementFactory;
import java.util.UUID;
import org.apache.flink.runtime.leaderelection.LeaderElectionDriver;
import org.apache.flink.runtime.leaderelection.LeaderElectionDriverFactory;
import org.apache.flink.runtime.leaderelection.LeaderInformation;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One leadership per JobManager process on leasehold's {@code leadership} routes (as Flink's own
 * drivers have one leader latch per process since FLIP-285). Flink's leader session id is the
 * leadership's {@code sessionId}, so what readers see ({@code GET leaders}: the leadership's
 * session for each published component) is what Flink's retrievers need. Each component's address
 * is published under the leadership; when the leadership ends, leasehold makes every published
 * component leaderless at once.
 */
public final class LeaseholdLeaderElectionDriver implements LeaderElectionDriver {
    private static final Logger LOG = LoggerFactory.getLogger(LeaseholdLeaderElectionDriver.class);

    static final class Factory implements LeaderElectionDriverFactory {
        private final LeaseholdHaServices.Shared shared;

        Factory(LeaseholdHaServices.Shared shared) {
            this.shared = shared;
        }

        @Override
        public LeaderElectionDriver create(Listener listener) {
            LeaseholdLeaderElectionDriver d = new LeaseholdLeaderElectionDriver(shared, listener);
            shared.driver.set(d);
            d.start();
            return d;
        }
    }

    private final LeaseholdHaServices.Shared shared;
    private final Listener listener;
    private final LeadershipElection election;

    private LeaseholdLeaderElectionDriver(LeaseholdHaServices.Shared shared, Listener listener) {
        this.shared = shared;
        this.listener = listener;
        long ttl = shared.leaseTtl.toMillis();
        // Who leads, as operators read it in GET leaders: the process, and a suffix unique to this driver.
        String contender = (ManagementFactory.getRuntimeMXBean().getName() + "-" + UUID.randomUUID().toString().substring(0, 8))
                .replaceAll("[^\\x21-\\x7e]", "_");
        this.election = shared.cluster.election(LeadershipElection.Options.of(
                contender.length() > 128 ? contender.substring(contender.length() - 128) : contender, ttl));
    }

    private void start() {
        election.start(new LeadershipElection.Listener() {
            @Override
            public void granted(Leadership leadership) {
                LOG.info("Leadership of leasehold cluster {} granted to {} (session {}, token {}).",
                        shared.cluster.id(), leadership.contenderId(), leadership.sessionId(), leadership.token());
                listener.onGrantLeadership(UUID.fromString(leadership.sessionId()));
            }

            @Override
            public void revoked(Leadership leadership, String reason) {
                LOG.info("Leadership of leasehold cluster {} (session {}) revoked: {}.",
                        shared.cluster.id(), leadership.sessionId(), reason);
                listener.onRevokeLeadership();
            }
        });
    }

    LeadershipElection election() {
        return election;
    }

    @Override
    public boolean hasLeadership() {
        return election.isLeader();
    }

    @Override
    public void publishLeaderInformation(String componentId, LeaderInformation info) {
        if (info.isEmpty()) {
            deleteLeaderInformation(componentId);
            return;
        }
        // Publishing is idempotent: a few tries while the outcome is unknown; past them, the
        // leadership itself is in doubt and the election steps down by its own clock.
        for (int attempt = 0; attempt < 3; attempt++) {
            try {
                if (!election.publish(info.getLeaderSessionID().toString(), componentId, info.getLeaderAddress())) {
                    LOG.debug("Not publishing {} for {}: the leadership is not (any more) {}.", info.getLeaderAddress(),
                            componentId, info.getLeaderSessionID());
                }
                return;
            } catch (LeaseholdException.Unavailable e) {
                LOG.warn("Publishing the leader of {} failed (attempt {}): {}", componentId, attempt + 1, e.getMessage());
                sleep(200L << attempt);
            } catch (RuntimeException e) {
                listener.onError(e);
                return;
            }
        }
    }

    @Override
    public void deleteLeaderInformation(String componentId) {
        try {
            election.unpublish(componentId);
        } catch (LeaseholdException.Unavailable e) {
            // The leadership ends with its lease at the latest, and its components with it.
            LOG.warn("Unpublishing {} failed: {}", componentId, e.getMessage());
        } catch (RuntimeException e) {
            listener.onError(e);
        }
    }

    @Override
    public void close() {
        shared.driver.compareAndSet(this, null);
        election.close();
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
