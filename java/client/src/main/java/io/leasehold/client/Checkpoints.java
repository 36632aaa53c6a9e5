package io.leasehold.client;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Base64;
import java.util.List;
import java.util.Map;

/** A job's completed checkpoints and checkpoint id counter. */
public final class Checkpoints {
    private final ClusterClient c;
    private final String path;

    Checkpoints(ClusterClient c, String jobId) {
        this.c = c;
        this.path = c.base + "/jobs/" + jobId;
    }

    /** A stored checkpoint; {@code metadata} decoded from base64 (null when none was given). */
    public record Checkpoint(long checkpointId, long timestamp, String externalPointer, byte[] metadata, Map<String, String> properties) {
        static Checkpoint from(JsonNode n) {
            Map<String, String> props = new java.util.LinkedHashMap<>();
            n.path("properties").fields().forEachRemaining(e -> props.put(e.getKey(), e.getValue().asText()));
            return new Checkpoint(n.path("checkpointId").asLong(), n.path("timestamp").asLong(),
                    n.path("externalPointer").asText(),
                    n.hasNonNull("metadata") ? Base64.getDecoder().decode(n.get("metadata").asText()) : null, props);
        }
    }

    /**
     * addCheckpointAndSubsumeOldestOne: stores it and keeps the newest {@code maxRetained}.
     * @return the answer {@code {checkpointId, subsumed: [{checkpointId, externalPointer}]}}
     */
    public JsonNode add(long checkpointId, long timestamp, String externalPointer, byte[] metadata,
                        Map<String, String> properties, int maxRetained, Fence fence) {
        return add(checkpointId, timestamp, externalPointer, metadata, properties, maxRetained, List.of(), fence);
    }

    /**
     * The same, also dropping the older checkpoints {@code subsume} names, whatever
     * {@code maxRetained} says (Flink subsumes savepoints while it keeps an older checkpoint).
     */
    public JsonNode add(long checkpointId, long timestamp, String externalPointer, byte[] metadata,
                        Map<String, String> properties, int maxRetained, List<Long> subsume, Fence fence) {
        ObjectNode b = ClusterClient.obj().put("checkpointId", checkpointId).put("timestamp", timestamp)
                .put("externalPointer", externalPointer).put("maxRetained", maxRetained);
        if (!subsume.isEmpty()) {
            var ids = b.putArray("subsume");
            subsume.forEach(ids::add);
        }
        if (metadata != null) b.put("metadata", Base64.getEncoder().encodeToString(metadata));
        if (properties != null && !properties.isEmpty()) {
            ObjectNode p = b.putObject("properties");
            properties.forEach(p::put);
        }
        return c.client.write("POST", path + "/checkpoints", () -> LeaseholdClient.jsonBody(b), "application/json", fence, null).json();
    }

    /** Oldest first, every page of them. */
    public List<Checkpoint> all() {
        return c.pages(path + "/checkpoints", "checkpoints")
                .stream().map(Checkpoint::from).toList();
    }

    public JsonNode shutdown(String jobStatus, Fence fence) {
        ObjectNode b = ClusterClient.obj().put("jobStatus", jobStatus);
        return c.client.write("POST", path + "/checkpoints/shutdown", () -> LeaseholdClient.jsonBody(b), "application/json", fence, null).json();
    }

    /** getAndIncrement: the value before the increment (the first is 1). */
    public long incrementCounter(Fence fence) {
        return c.client.write("POST", path + "/checkpoint-id-counter/increment", () -> null, null, fence, null)
                .json().path("value").asLong();
    }

    public long counter() {
        return c.client.json("GET", path + "/checkpoint-id-counter", null, null).path("value").asLong();
    }

    /** setCount; it never lowers the counter ({@code 409 CheckpointIdNotIncreasing}). */
    public long setCounter(long value, Fence fence) {
        ObjectNode b = ClusterClient.obj().put("value", value);
        return c.client.write("PUT", path + "/checkpoint-id-counter", () -> LeaseholdClient.jsonBody(b), "application/json", fence, null)
                .json().path("value").asLong();
    }

    public JsonNode shutdownCounter(String jobStatus, Fence fence) {
        ObjectNode b = ClusterClient.obj().put("jobStatus", jobStatus);
        return c.client.write("POST", path + "/checkpoint-id-counter/shutdown", () -> LeaseholdClient.jsonBody(b), "application/json", fence, null).json();
    }
}
