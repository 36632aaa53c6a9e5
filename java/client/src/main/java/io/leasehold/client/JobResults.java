package io.leasehold.client;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;

/** Job results (Flink's {@code JobResultStore}): fenced writes, plain reads. */
public final class JobResults {
    private final ClusterClient c;

    JobResults(ClusterClient c) {
        this.c = c;
    }

    /** createDirtyResult; {@link LeaseholdException.Conflict} {@code JobResultExists} if the job has any entry. */
    public JsonNode createDirty(String jobId, ObjectNode result, Fence fence) {
        return c.client.write("PUT", c.base + "/job-results/" + jobId, () -> LeaseholdClient.jsonBody(result),
                "application/json", fence, null).json();
    }

    /** markResultAsClean; {@link LeaseholdException.NotFound} when there is no entry. */
    public JsonNode markClean(String jobId, Fence fence) {
        return c.client.write("POST", c.base + "/job-results/" + jobId + "/clean", () -> null, null, fence, null).json();
    }

    /** The entry, or null. */
    public JsonNode get(String jobId) {
        var a = c.client.send("GET", c.base + "/job-results/" + jobId, null, null, null, null, 404);
        return a.status() == 404 ? null : a.json();
    }

    /** The entries, by job id, every page of them; {@code state} is {@code dirty}, {@code clean}, or null for all. */
    public List<JsonNode> list(String state) {
        String q = state == null ? "" : "?state=" + state;
        return c.pages(c.base + "/job-results" + q, "jobResults");
    }
}
