package io.leasehold.flink;

import java.time.Duration;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ConfigOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.HighAvailabilityOptions;

/** The plugin's options, beside Flink's {@code high-availability.type} and {@code high-availability.cluster-id}. */
public final class LeaseholdHaOptions {
    private LeaseholdHaOptions() {}

    public static final ConfigOption<String> URL = ConfigOptions.key("high-availability.leasehold.url")
            .stringType()
            .defaultValue("http://127.0.0.1:8080")
            .withDescription("The leasehold server (or the load balancer in front of its replicas).");

    public static final ConfigOption<String> TOKEN = ConfigOptions.key("high-availability.leasehold.token")
            .stringType()
            .noDefaultValue()
            .withDescription("The bearer token sent to leasehold, when it has access tokens configured.");

    public static final ConfigOption<Duration> LEASE_TTL = ConfigOptions.key("high-availability.leasehold.lease-ttl")
            .durationType()
            // 10 s: a standby takes over 7-10 s after the leader died (a fifth of ZooKeeper's 60 s
            // session with margin), and a leader rides out a pause of about 5 s (docs/flink.md).
            .defaultValue(Duration.ofSeconds(10))
            .withDescription("TTL of the process's leadership lease: renewed every third of it; a JobManager that"
                    + " cannot renew steps down before it ends (it rides out a pause of about half the TTL), and a"
                    + " standby, woken by leasehold when the lease ends, takes over at most this long after the"
                    + " leader died.");

    public static final ConfigOption<Duration> REQUEST_TIMEOUT = ConfigOptions.key("high-availability.leasehold.request-timeout")
            .durationType()
            .defaultValue(Duration.ofSeconds(10))
            .withDescription("Timeout of one request to leasehold (renewals use a third of the lease TTL at most).");

    public static final ConfigOption<Boolean> RENEWAL_STREAM = ConfigOptions.key("high-availability.leasehold.renewal-stream")
            .booleanType()
            .defaultValue(true)
            .withDescription("Whether the leader renews its lease over leasehold's renewal stream (one websocket per"
                    + " process, GET /v1/renewals; HTTP while it cannot be opened) rather than one HTTP request per"
                    + " renewal.");

    /**
     * The leasehold cluster id of Flink's {@code high-availability.cluster-id}: its leading slashes
     * dropped (Flink's default is {@code /default}), any character leasehold does not take in a
     * cluster id replaced by {@code -}.
     */
    public static String clusterId(Configuration conf) {
        String raw = conf.get(HighAvailabilityOptions.HA_CLUSTER_ID).replaceAll("^/+", "");
        String id = raw.replaceAll("[^A-Za-z0-9._-]", "-");
        if (id.isEmpty() || !Character.isLetterOrDigit(id.charAt(0))) id = "c" + id;
        return id.length() > 64 ? id.substring(0, 64) : id;
    }
}
