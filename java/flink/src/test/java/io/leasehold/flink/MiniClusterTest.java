package io.leasehold.flink;

import static org.junit.jupiter.api.Assertions.*;

import io.leasehold.client.Checkpoints;
import io.leasehold.client.ClusterClient;
import io.leasehold.client.Leader;
import io.leasehold.client.LeaseholdClient;
import io.leasehold.client.Leadership;
import io.leasehold.client.testing.LeaseholdServer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.apache.flink.api.common.JobID;
import org.apache.flink.api.common.JobStatus;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.runtime.jobgraph.JobGraph;
import org.apache.flink.runtime.minicluster.MiniCluster;
import org.apache.flink.runtime.minicluster.MiniClusterConfiguration;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/** A Flink MiniCluster whose HA services are the plugin, against a real leasehold server on real Redis. */
class MiniClusterTest {
    @RegisterExtension
    static LeaseholdServer server = new LeaseholdServer();

    @TempDir
    Path tmp;

    private MiniCluster start(Configuration conf) throws Exception {
        MiniCluster mc = new MiniCluster(new MiniClusterConfiguration.Builder()
                .setConfiguration(conf).setNumTaskManagers(1).setNumSlotsPerTaskManager(2).build());
        mc.start();
        return mc;
    }

    private static JobGraph jobGraph(Configuration conf, long end, long sleepMs) {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        env.setParallelism(1);
        return CountingJob.graph(env, end, sleepMs).getJobGraph(MiniClusterTest.class.getClassLoader(), null);
    }

    private static List<CountingJob.Count> run(int run) {
        return CountingJob.COUNTS.stream().filter(c -> c.run() == run).toList();
    }

    @Test
    void revokedLeadershipIsRegainedAndTheJobRestoresItsState() throws Exception {
        String clusterId = "flink-revoke";
        Configuration conf = FlinkHa.conf(FlinkHa.config(server.url(), clusterId, tmp, Duration.ofSeconds(3)));
        ClusterClient cluster = new LeaseholdClient(server.url(), null).cluster(clusterId);
        MiniCluster mc = start(conf);
        try {
            JobGraph job = jobGraph(conf, Long.MAX_VALUE, 5);
            JobID jobId = job.getJobID();
            String jid = jobId.toHexString();
            int runsBefore = CountingJob.RUNS.get(); // the static counts are shared by the tests of this JVM
            mc.submitJob(job).get();
            int firstRun = awaitNextRun(runsBefore);

            // What Flink keeps in leasehold, read through its REST API.
            FlinkHa.await("two checkpoints in leasehold", Duration.ofSeconds(60),
                    () -> cluster.checkpoints(jid).counter() > 2 && !cluster.checkpoints(jid).all().isEmpty());
            Checkpoints.Checkpoint latest = last(cluster.checkpoints(jid).all());
            assertNotNull(latest.metadata(), "the checkpoint carries Flink's CompletedCheckpoint");
            assertTrue(latest.externalPointer().startsWith("file:"), latest.externalPointer());
            assertEquals(List.of(jid), cluster.executionPlans().jobIds());
            Leadership before = cluster.leadership();
            assertNotNull(before);
            FlinkHa.await("every component published", Duration.ofSeconds(30), () -> published(cluster, jid, before.sessionId()));

            // An operator revokes the leadership: Flink steps down, regains it, recovers the job.
            assertTrue(cluster.revokeLeadership(null));
            FlinkHa.await("a new leadership", Duration.ofSeconds(30), () -> {
                Leadership l = cluster.leadership();
                return l != null && !l.sessionId().equals(before.sessionId());
            });
            int secondRun = awaitNextRun(firstRun);
            FlinkHa.await("the recovered job counts on", Duration.ofSeconds(60), () -> run(secondRun).size() > 20);
            long firstAfter = run(secondRun).get(0).count();
            assertTrue(firstAfter > 1, "restored from a checkpoint, not from zero: first count " + firstAfter);
            long counted = maxCount(firstRun);
            assertTrue(firstAfter <= counted + 1, "restored from a checkpoint of what was counted: " + firstAfter + " > " + counted);
            assertEquals(JobStatus.RUNNING, mc.getJobStatus(jobId).get());
            Leadership after = cluster.leadership();
            assertTrue(after.token() > before.token(), "a new fencing token");
            FlinkHa.await("every component published again", Duration.ofSeconds(30), () -> published(cluster, jid, after.sessionId()));
            // Cancelled, the job ends as a finished one does: a clean result and nothing else. (Closing
            // the MiniCluster before that would end the leadership first, and the result write,
            // fenced by it, would be refused.)
            mc.cancelJob(jobId).get();
            assertEquals("CANCELED", mc.requestJobResult(jobId).get().getApplicationStatus().name());
            awaitCleanResult(cluster, jid);
        } finally {
            close(mc);
        }
    }

    @Test
    void aFinishedJobLeavesACleanResultAndNothingElse() throws Exception {
        String clusterId = "flink-finish";
        Configuration conf = FlinkHa.conf(FlinkHa.config(server.url(), clusterId, tmp, Duration.ofSeconds(3)));
        ClusterClient cluster = new LeaseholdClient(server.url(), null).cluster(clusterId);
        MiniCluster mc = start(conf);
        try {
            JobGraph job = jobGraph(conf, 300, 10);
            String jid = job.getJobID().toHexString();
            mc.submitJob(job).get();
            assertEquals("SUCCEEDED", mc.requestJobResult(job.getJobID()).get().getApplicationStatus().name());
            awaitCleanResult(cluster, jid);
            assertEquals("SUCCEEDED", cluster.jobResults().get(jid).path("applicationStatus").asText());
            assertTrue(cluster.executionPlans().jobIds().isEmpty(), "no plan left");
            assertTrue(cluster.checkpoints(jid).all().isEmpty(), "no checkpoint left");
            assertTrue(cluster.blobs().list(jid).isEmpty(), "no blob left");
            assertNull(cluster.leaders().leaders().get("jobmanager/" + jid), "no job manager leader left");
        } finally {
            close(mc);
        }
    }

    private static void awaitCleanResult(ClusterClient cluster, String jid) throws InterruptedException {
        FlinkHa.await("a clean job result", Duration.ofSeconds(60), () -> {
            var r = cluster.jobResults().get(jid);
            return r != null && "clean".equals(r.path("state").asText());
        });
    }

    /** Closes the MiniCluster, failing (not hanging) when it does not close within a minute. */
    private static void close(MiniCluster mc) throws Exception {
        mc.closeAsync().get(60, java.util.concurrent.TimeUnit.SECONDS);
    }

    private static boolean published(ClusterClient cluster, String jid, String sessionId) {
        Map<String, Leader> leaders = cluster.leaders().leaders();
        for (String c : List.of("resourcemanager", "dispatcher", "rest", "jobmanager/" + jid)) {
            Leader l = leaders.get(c);
            if (l == null || l.address() == null || !sessionId.equals(l.sessionId())) return false;
        }
        return true;
    }

    private static int awaitNextRun(int previous) throws InterruptedException {
        FlinkHa.await("a run after run " + previous, Duration.ofSeconds(90),
                () -> CountingJob.COUNTS.stream().anyMatch(c -> c.run() > previous));
        return CountingJob.COUNTS.stream().filter(c -> c.run() > previous).findFirst().orElseThrow().run();
    }

    private static long maxCount(int run) {
        return run(run).stream().mapToLong(CountingJob.Count::count).max().orElse(0);
    }

    private static <T> T last(List<T> l) {
        return l.get(l.size() - 1);
    }
}
