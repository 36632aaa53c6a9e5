package io.leasehold.flink;

import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.function.BooleanSupplier;
import org.apache.flink.configuration.Configuration;

/** Test helpers: a Flink configuration on leasehold, and waiting. */
final class FlinkHa {
    private FlinkHa() {}

    static Map<String, String> config(String url, String clusterId, Path checkpoints, Duration ttl) {
        Map<String, String> m = new HashMap<>();
        m.put("high-availability.type", LeaseholdHaServicesFactory.class.getName());
        m.put("high-availability.cluster-id", clusterId);
        m.put("high-availability.leasehold.url", url);
        m.put("high-availability.leasehold.lease-ttl", ttl.toMillis() + " ms");
        m.put("execution.checkpointing.interval", "300 ms");
        m.put("execution.checkpointing.storage", "filesystem");
        m.put("execution.checkpointing.dir", checkpoints.toUri().toString());
        m.put("restart-strategy.type", "fixed-delay");
        m.put("restart-strategy.fixed-delay.attempts", "1000");
        m.put("restart-strategy.fixed-delay.delay", "200 ms");
        m.put("rest.bind-port", "0");
        m.put("taskmanager.numberOfTaskSlots", "2");
        return m;
    }

    static Configuration conf(Map<String, String> m) {
        return Configuration.fromMap(m);
    }

    static void await(String what, Duration timeout, BooleanSupplier condition) throws InterruptedException {
        long end = System.nanoTime() + timeout.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > end) throw new AssertionError("timed out after " + timeout + " waiting for " + what);
            Thread.sleep(100);
        }
    }
}
