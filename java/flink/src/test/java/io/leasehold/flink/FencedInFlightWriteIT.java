package io.leasehold.flink;

import static org.junit.jupiter.api.Assertions.*;

import io.leasehold.client.ClusterClient;
import io.leasehold.client.LeaseholdClient;
import io.leasehold.client.Leadership;
import io.leasehold.client.testing.LeaseholdServer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * A paused JobManager's store write, sent while it led and delivered only after another took
 * over, is refused by leasehold's fencing (ProcessFailoverIT's setting: two JobManager JVMs and a
 * TaskManager JVM on the plugin's shaded jar). jobmanager-1 reaches leasehold through a {@link
 * HoldingProxy}: the proxy holds what it sends until a fenced write (a checkpoint's) is among
 * it, then jobmanager-1 is paused (SIGSTOP) past its lease; jobmanager-2 takes over; the proxy
 * delivers the held write, which the server refuses ({@code FencingTokenStale}); resumed
 * (SIGCONT), jobmanager-1 steps down and jobmanager-2 still leads.
 */
class FencedInFlightWriteIT {
    @RegisterExtension
    static LeaseholdServer server = new LeaseholdServer();

    @TempDir
    Path tmp;

    private final FlinkCluster flink = new FlinkCluster();

    @AfterEach
    void stopAll() throws Exception {
        flink.close();
    }

    /** Writes the server refused for a stale fencing token, for {@code cluster}. */
    static double staleRefusals(String cluster) throws Exception {
        return server.metric("leasehold_fencing_refusals_total")
                .getOrDefault("code=\"FencingTokenStale\",cluster=\"" + cluster + "\"", 0.0);
    }

    @Test
    void aPausedLeadersWriteInFlightIsRefusedByFencing() throws Exception {
        String clusterId = "flink-inflight";
        Map<String, String> m = FlinkCluster.processTestConfig(server.url(), clusterId, tmp.resolve("checkpoints"));
        Path conf = FlinkProcess.configDir(tmp.resolve("conf"), m);
        ClusterClient cluster = new LeaseholdClient(server.url(), null).cluster(clusterId);
        Map<String, String> env = Map.of("LEASEHOLD_COUNT_FILE", tmp.resolve("counts.txt").toString());

        try (HoldingProxy proxy = new HoldingProxy(Integer.parseInt(server.url().replaceAll(".*:", "")))) {
            Map<String, String> m1 = new HashMap<>(m);
            m1.put("high-availability.leasehold.url", "http://127.0.0.1:" + proxy.port());
            FlinkProcess jm1 = flink.start("jobmanager-1", FlinkProcess.JOB_MANAGER, FlinkProcess.configDir(tmp.resolve("conf-1"), m1), env);
            flink.awaitLeader(cluster, jm1, Duration.ofSeconds(90));
            FlinkProcess jm2 = flink.start("jobmanager-2", FlinkProcess.JOB_MANAGER, conf, env);
            flink.start("taskmanager", FlinkProcess.TASK_MANAGER, conf, env);
            FlinkHa.await("the rest endpoint published", Duration.ofSeconds(60), () -> {
                var r = cluster.leader("rest");
                return r != null && r.address() != null;
            });
            String jid = FlinkCluster.submitCountingJob(m, clusterId);
            FlinkHa.await("checkpoints in leasehold", Duration.ofSeconds(120), () -> cluster.checkpoints(jid).counter() > 3);
            Leadership first = cluster.leadership();
            double refusedBefore = staleRefusals(clusterId);

            // A checkpoint every 300 ms: within jobmanager-1's lease, one of its fenced writes is on the wire.
            proxy.hold();
            FlinkHa.await("a fenced write of jobmanager-1 on the wire", Duration.ofSeconds(10),
                    () -> proxy.heldText().toLowerCase().contains("x-fencing-token"));
            jm1.signal("STOP");
            try {
                flink.awaitLeader(cluster, jm2, Duration.ofSeconds(60));
                Leadership second = cluster.leadership();
                assertTrue(second.token() > first.token());
                proxy.release();
                FlinkHa.await("the held write refused by fencing", Duration.ofSeconds(30), () -> {
                    try {
                        return staleRefusals(clusterId) > refusedBefore;
                    } catch (Exception e) {
                        throw new AssertionError(e);
                    }
                });
            } finally {
                proxy.release();
                jm1.signal("CONT");
            }
            FlinkHa.await("jobmanager-1 steps down", Duration.ofSeconds(30),
                    () -> jm1.logTail(400).contains("revoked: unconfirmed") || jm1.logTail(400).contains("revoked: lost"));
            // …and was told so: the held write was its own.
            FlinkHa.await("jobmanager-1 told FencingTokenStale", Duration.ofSeconds(30),
                    () -> jm1.logTail(2000).contains("FencingTokenStale"));
            Thread.sleep(3000);
            Leadership now = cluster.leadership();
            assertTrue(now.contenderId().startsWith(jm2.pid() + "@"), "jobmanager-2 still leads: " + now);
            assertTrue(jm1.alive(), () -> "jobmanager-1 died after resuming" + flink.logs());
            // The checkpoints jobmanager-2 keeps go on.
            long counter = cluster.checkpoints(jid).counter();
            FlinkHa.await("jobmanager-2 checkpoints", Duration.ofSeconds(60), () -> cluster.checkpoints(jid).counter() > counter);
        }
    }
}
