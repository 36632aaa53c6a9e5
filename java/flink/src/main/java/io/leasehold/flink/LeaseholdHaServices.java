package io.leasehold.flink;

import io.leasehold.client.ClusterClient;
import io.leasehold.client.Fence;
import io.leasehold.client.LeaseholdClient;
import io.leasehold.client.LeaseholdException;
import java.time.Duration;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.flink.api.common.JobID;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.runtime.checkpoint.CheckpointRecoveryFactory;
import org.apache.flink.runtime.highavailability.AbstractHaServices;
import org.apache.flink.runtime.jobmanager.ExecutionPlanStore;
import org.apache.flink.runtime.leaderretrieval.DefaultLeaderRetrievalService;
import org.apache.flink.runtime.leaderretrieval.LeaderRetrievalService;

/**
 * Flink's high-availability services on leasehold, a subclass of Flink's own {@link
 * AbstractHaServices}: one leadership per JobManager process (its {@link
 * LeaseholdLeaderElectionDriver}), publishing each component's address; retrieval on leasehold's
 * websocket watch, one per process for all of Flink's retrievals (the client's shared {@code
 * ClusterWatch}); and every store on leasehold's fenced stores, fenced by the token of this
 * process's leadership.
 *
 * <p>Component names are leasehold's: {@code resourcemanager}, {@code dispatcher}, {@code rest}
 * and {@code jobmanager/<job id>}, so that {@code GET leaders} and {@code leasehold watch} show a
 * Flink cluster as it is.
 */
public class LeaseholdHaServices extends AbstractHaServices {
    /** What the services share: the cluster, and the fence of the process's current leadership. */
    static final class Shared implements Fence {
        final ClusterClient cluster;
        final Duration leaseTtl;
        final AtomicReference<LeaseholdLeaderElectionDriver> driver = new AtomicReference<>();

        Shared(Configuration conf) {
            LeaseholdClient client = LeaseholdClient.builder(conf.get(LeaseholdHaOptions.URL))
                    .token(conf.getOptional(LeaseholdHaOptions.TOKEN).orElse(null))
                    .requestTimeout(conf.get(LeaseholdHaOptions.REQUEST_TIMEOUT))
                    .renewalStream(conf.get(LeaseholdHaOptions.RENEWAL_STREAM))
                    .build();
            this.cluster = client.cluster(LeaseholdHaOptions.clusterId(conf));
            this.leaseTtl = conf.get(LeaseholdHaOptions.LEASE_TTL);
        }

        /** The token of this process's leadership while it is valid by the local clock, else NotLeader before sending anything. */
        @Override
        public String token() {
            LeaseholdLeaderElectionDriver d = driver.get();
            if (d == null) {
                throw new LeaseholdException.NotLeader("NotLeader", "this process does not take part in the election of " + cluster.id(), 0, null);
            }
            return d.election().token();
        }
    }

    private final Shared shared;

    private LeaseholdHaServices(Shared shared, Configuration conf, Executor ioExecutor) {
        super(conf, new LeaseholdLeaderElectionDriver.Factory(shared), ioExecutor,
                new LeaseholdBlobStore(shared.cluster, shared), new LeaseholdJobResultStore(shared.cluster, shared, ioExecutor));
        this.shared = shared;
    }

    public static LeaseholdHaServices create(Configuration conf, Executor ioExecutor) {
        return new LeaseholdHaServices(new Shared(conf), conf, ioExecutor);
    }

    /** The leasehold cluster these services keep their state in. */
    public ClusterClient cluster() {
        return shared.cluster;
    }

    @Override
    protected LeaderRetrievalService createLeaderRetrievalService(String leaderName) {
        return new DefaultLeaderRetrievalService(new LeaseholdLeaderRetrievalDriver.Factory(shared.cluster, leaderName));
    }

    @Override
    protected CheckpointRecoveryFactory createCheckpointRecoveryFactory() {
        return new LeaseholdCheckpointRecoveryFactory(shared.cluster, shared);
    }

    @Override
    protected ExecutionPlanStore createExecutionPlanStore() {
        return new LeaseholdExecutionPlanStore(shared.cluster, shared);
    }

    @Override
    protected void internalClose() {
        // Nothing of its own: the driver and the retrievals are closed by Flink.
    }

    /** cleanupAllData: everything of the cluster in leasehold, leases included. */
    @Override
    protected void internalCleanup() {
        shared.cluster.cleanupCluster();
    }

    /** A job's global cleanup: its leader, plan, checkpoints, counter and blobs; its result stays. */
    @Override
    protected void internalCleanupJobData(JobID jobID) {
        shared.cluster.cleanupJob(jobID.toHexString(), shared);
    }

    @Override
    protected String getLeaderPathForResourceManager() {
        return "resourcemanager";
    }

    @Override
    protected String getLeaderPathForDispatcher() {
        return "dispatcher";
    }

    @Override
    protected String getLeaderPathForJobManager(JobID jobID) {
        return "jobmanager/" + jobID.toHexString();
    }

    @Override
    protected String getLeaderPathForRestServer() {
        return "rest";
    }
}
