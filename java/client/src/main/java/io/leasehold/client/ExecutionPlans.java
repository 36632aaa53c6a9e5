package io.leasehold.client;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.net.http.HttpRequest;
import java.util.ArrayList;
import java.util.List;

/** Execution plans and their resource requirements (Flink's {@code ExecutionPlanStore}). */
public final class ExecutionPlans {
    private final ClusterClient c;

    ExecutionPlans(ClusterClient c) {
        this.c = c;
    }

    public void put(String jobId, byte[] plan, Fence fence) {
        c.client.write("PUT", c.base + "/execution-plans/" + jobId, () -> HttpRequest.BodyPublishers.ofByteArray(plan),
                "application/octet-stream", fence, null);
    }

    /** The plan's bytes, or null. */
    public byte[] get(String jobId) {
        var a = c.client.send("GET", c.base + "/execution-plans/" + jobId, null, null, null, null, 404);
        return a.status() == 404 ? null : a.response().body();
    }

    /** The job ids with a plan, by job id, every page of them. */
    public List<String> jobIds() {
        List<String> out = new ArrayList<>();
        for (JsonNode n : c.pages(c.base + "/execution-plans", "jobIds")) out.add(n.asText());
        return out;
    }

    /** {@link LeaseholdException.NotFound} {@code ExecutionPlanNotFound} without a plan. */
    public void putRequirements(String jobId, ObjectNode requirements, Fence fence) {
        c.client.write("PUT", c.base + "/execution-plans/" + jobId + "/resource-requirements",
                () -> LeaseholdClient.jsonBody(requirements), "application/json", fence, null);
    }

    /** The requirements object, or null. */
    public JsonNode getRequirements(String jobId) {
        var a = c.client.send("GET", c.base + "/execution-plans/" + jobId + "/resource-requirements", null, null, null, null, 404);
        return a.status() == 404 ? null : a.json().get("resourceRequirements");
    }
}
