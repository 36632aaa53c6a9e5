package io.leasehold.client;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** One cluster of a leasehold server: reads, the leadership routes, the stores, cleanup. */
public final class ClusterClient {
    final LeaseholdClient client;
    final String clusterId;
    final String base;

    ClusterClient(LeaseholdClient client, String clusterId) {
        this.client = client;
        this.clusterId = clusterId;
        this.base = "/v1/clusters/" + LeaseholdClient.enc(clusterId);
    }

    public String id() {
        return clusterId;
    }

    public LeaseholdClient client() {
        return client;
    }

    static ObjectNode obj() {
        return LeaseholdClient.JSON.createObjectNode();
    }

    // --- reads --------------------------------------------------------------------------------

    /** {@code GET leaders}: every component listed, with its leader or null, and the change index. */
    public Snapshot leaders() {
        return Snapshot.from(client.json("GET", base + "/leaders", null, null));
    }

    /** {@code GET leaders?index=N&wait=…}: held until the cluster's index passes N or the wait ends. */
    public Snapshot leaders(long index, Duration wait) {
        String q = "?index=" + index + "&wait=" + wait.toMillis() + "ms";
        return Snapshot.from(client.send("GET", base + "/leaders" + q, null, null, null,
                client.requestTimeout().plus(wait)).json());
    }

    /** {@code GET leaders/{component}}: its leader, or null. */
    public Leader leader(String component) {
        return Leader.from(client.json("GET", base + "/leaders/" + component, null, null).get("leader"));
    }

    /** The cluster's leaders at one change index. */
    public record Snapshot(long index, Map<String, Leader> leaders) {
        static Snapshot from(JsonNode n) {
            Map<String, Leader> m = new LinkedHashMap<>();
            for (JsonNode e : n.path("leaders")) m.put(e.path("component").asText(), Leader.from(e.get("leader")));
            return new Snapshot(n.path("index").asLong(), java.util.Collections.unmodifiableMap(m));
        }
    }

    // --- one component's lease (the per-component routes) -------------------------------------

    /** The answer of a per-component campaign: whether it was granted, and the holder either way. */
    public record ComponentCampaign(boolean granted, Leader leader) {}

    /** {@code POST leaders/{component}/campaign}; {@code address} may be null (confirm later). */
    public ComponentCampaign campaign(String component, String contenderId, long ttlMs, String address) {
        ObjectNode b = obj().put("contenderId", contenderId).put("ttlMs", ttlMs);
        if (address != null) b.put("address", address);
        JsonNode n = client.json("POST", base + "/leaders/" + component + "/campaign", b, null);
        return new ComponentCampaign(n.path("granted").asBoolean(), Leader.from(n.get("leader")));
    }

    /** {@code POST leaders/{component}/resign}: true when it released the lease. */
    public boolean resign(String component, String contenderId, String sessionId) {
        ObjectNode b = obj().put("contenderId", contenderId).put("sessionId", sessionId);
        return client.json("POST", base + "/leaders/" + component + "/resign", b, null).path("released").asBoolean();
    }

    // --- the leadership of a process (one per process, many components) ------------------------

    /** {@code GET leadership}: the live leadership, or null. */
    public Leadership leadership() {
        return Leadership.from(client.json("GET", base + "/leadership", null, null).get("leadership"));
    }

    /** The answer of a campaign: whether it was granted, and the holder either way. */
    public record Campaign(boolean granted, Leadership leadership) {}

    public Campaign campaignLeadership(String contenderId, long ttlMs, Duration timeout) {
        ObjectNode b = obj().put("contenderId", contenderId).put("ttlMs", ttlMs);
        JsonNode n = client.send("POST", base + "/leadership/campaign", LeaseholdClient.jsonBody(b),
                "application/json", null, timeout).json();
        return new Campaign(n.path("granted").asBoolean(), Leadership.from(n.get("leadership")));
    }

    public Leadership renewLeadership(String contenderId, String sessionId, long ttlMs, Duration timeout) {
        ObjectNode b = obj().put("contenderId", contenderId).put("sessionId", sessionId).put("ttlMs", ttlMs);
        return Leadership.from(client.send("POST", base + "/leadership/renew", LeaseholdClient.jsonBody(b),
                "application/json", null, timeout).json().get("leadership"));
    }

    public boolean resignLeadership(String contenderId, String sessionId) {
        ObjectNode b = obj().put("contenderId", contenderId).put("sessionId", sessionId);
        return client.json("POST", base + "/leadership/resign", b, null).path("released").asBoolean();
    }

    /** Publishes a component's address under the leadership: readers see it as the component's leader. */
    public Leader publish(String sessionId, String component, String address) {
        ObjectNode b = obj().put("sessionId", sessionId).put("component", component).put("address", address);
        return Leader.from(client.json("POST", base + "/leadership/publish", b, null).get("leader"));
    }

    public boolean unpublish(String sessionId, String component) {
        ObjectNode b = obj().put("sessionId", sessionId).put("component", component);
        return client.json("POST", base + "/leadership/unpublish", b, null).path("removed").asBoolean();
    }

    /** Admin: ends the live leadership (or only the one of {@code sessionId}, when given). */
    public boolean revokeLeadership(String sessionId) {
        ObjectNode b = obj();
        if (sessionId != null) b.put("sessionId", sessionId);
        return client.json("POST", base + "/leadership/revoke", b, null).path("revoked").asBoolean();
    }

    public LeadershipElection election(LeadershipElection.Options options) {
        return new LeadershipElection(this, options);
    }

    public LeaderRetrieval retrieval(List<String> components, LeaderRetrieval.Listener listener) {
        return new LeaderRetrieval(this, components, listener);
    }

    // --- stores -------------------------------------------------------------------------------

    public JobResults jobResults() {
        return new JobResults(this);
    }

    public ExecutionPlans executionPlans() {
        return new ExecutionPlans(this);
    }

    public Checkpoints checkpoints(String jobId) {
        return new Checkpoints(this, jobId);
    }

    public Blobs blobs() {
        return new Blobs(this);
    }

    /**
     * Global cleanup of a job: everything but its result. Run again while the server answers
     * {@code 503 CleanupIncomplete} (or any outcome-unknown failure), as the API asks.
     */
    public JsonNode cleanupJob(String jobId, Fence fence) {
        LeaseholdException last = null;
        for (int attempt = 0; attempt < 10; attempt++) {
            if (attempt > 0) LeaseholdClient.sleep(Math.min(2000, 100L << attempt));
            try {
                return client.write("DELETE", base + "/jobs/" + jobId, () -> null, null, fence, null).json();
            } catch (LeaseholdException.Unavailable e) {
                last = e;
            }
        }
        throw last;
    }

    /** cleanupAllData: everything of the cluster, leases included (admin). */
    public JsonNode cleanupCluster() {
        return client.json("DELETE", base, null, null);
    }

    /** Every entry of a paginated list ({@code field} of each page), following
     * {@code nextCursor} page after page. */
    List<JsonNode> pages(String path, String field) {
        List<JsonNode> out = new ArrayList<>();
        String first = path + (path.contains("?") ? "&" : "?") + "limit=1000";
        String cursor = null;
        do {
            // A cursor is base64url: nothing to escape.
            JsonNode page = client.json("GET", cursor == null ? first : first + "&cursor=" + cursor, null, null);
            for (JsonNode n : page.path(field)) out.add(n);
            cursor = page.hasNonNull("nextCursor") ? page.get("nextCursor").asText() : null;
        } while (cursor != null);
        return out;
    }
}
