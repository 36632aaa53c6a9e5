package io.leasehold.flink;

import static org.junit.jupiter.api.Assertions.*;

import io.leasehold.flink.FailoverBench.Backend;
import io.leasehold.flink.FailoverBench.Timeouts;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The failover benchmark ({@link FailoverBench}), small enough for CI: at equal short timeouts
 * (3 s), one kill -9 of the leading JobManager per backend, and the idle load of a cluster with
 * three jobs over 5 s. It shows that the benchmark runs on both backends (each failover
 * continues the job from a checkpoint: the benchmark checks it) and prints what it measured; it
 * asserts no ratio, which one run on a shared machine cannot settle.
 */
class FailoverSmokeIT {
    @TempDir
    Path tmp;

    @Test
    void leaseholdAndZooKeeperFailOverAndReportTheirLoad() throws Exception {
        FailoverBench.Settings s = new FailoverBench.Settings(1, 3, Duration.ofSeconds(5), List.of(Timeouts.SHORT),
                List.of(Timeouts.SHORT), Duration.ofSeconds(3), Path.of("target", "bench", "flink-failover-smoke.md"));
        FailoverBench.Result r = FailoverBench.run(s, tmp);
        System.out.println(r.report());
        for (Backend b : Backend.values()) {
            String k = FailoverBench.key(b, Timeouts.SHORT);
            FailoverBench.Failovers f = r.failovers().get(k);
            assertEquals(1, f.running().size(), k);
            // Generous: the standby takes over within seconds of a 3 s lease or session.
            assertTrue(f.running().get(0) > 0 && f.running().get(0) < 120_000, k + " " + f);
            assertTrue(f.progress().get(0) > 0 && f.progress().get(0) < 120_000, k + " " + f);
            // Leaders renew (leasehold) or ping (ZooKeeper) all the time, idle or not.
            assertTrue(r.loads().get(k).requests() > 0, k + " " + r.loads().get(k));
        }
        assertTrue(r.report().contains("| short | **leasehold / zookeeper** |"), r.report());
    }
}
