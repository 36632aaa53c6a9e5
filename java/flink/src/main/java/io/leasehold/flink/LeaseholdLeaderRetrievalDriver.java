package io.leasehold.flink;

import io.leasehold.client.ClusterClient;
import io.leasehold.client.LeaderRetrieval;
import java.util.List;
import java.util.UUID;
import org.apache.flink.runtime.leaderelection.LeaderInformation;
import org.apache.flink.runtime.leaderretrieval.LeaderRetrievalDriver;
import org.apache.flink.runtime.leaderretrieval.LeaderRetrievalDriverFactory;
import org.apache.flink.runtime.leaderretrieval.LeaderRetrievalEventHandler;
import org.apache.flink.runtime.rpc.FatalErrorHandler;

/**
 * Follows one component's leader on leasehold's websocket watch (resumed by index, long-polls
 * when no websocket can be had), the one watch every retrieval of the process shares, and tells Flink its session id and address; a component without
 * a leader, or whose leader has not published an address yet, is empty leader information.
 */
public final class LeaseholdLeaderRetrievalDriver implements LeaderRetrievalDriver {
    static final class Factory implements LeaderRetrievalDriverFactory {
        private final ClusterClient cluster;
        private final String component;

        Factory(ClusterClient cluster, String component) {
            this.cluster = cluster;
            this.component = component;
        }

        @Override
        public LeaderRetrievalDriver createLeaderRetrievalDriver(LeaderRetrievalEventHandler handler, FatalErrorHandler fatalErrorHandler) {
            return new LeaseholdLeaderRetrievalDriver(cluster.retrieval(List.of(component), (c, leader) ->
                    handler.notifyLeaderAddress(leader == null || leader.address() == null
                            ? LeaderInformation.empty()
                            : LeaderInformation.known(UUID.fromString(leader.sessionId()), leader.address()))).start());
        }
    }

    private final LeaderRetrieval retrieval;

    private LeaseholdLeaderRetrievalDriver(LeaderRetrieval retrieval) {
        this.retrieval = retrieval;
    }

    @Override
    public void close() {
        retrieval.close();
    }
}
