package io.leasehold.flink;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.leasehold.client.ClusterClient;
import io.leasehold.client.Fence;
import io.leasehold.client.LeaseholdException;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collection;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import org.apache.flink.api.common.JobID;
import org.apache.flink.runtime.jobgraph.JobResourceRequirements;
import org.apache.flink.runtime.jobmanager.ExecutionPlanStore;
import org.apache.flink.streaming.api.graph.ExecutionPlan;
import org.apache.flink.util.InstantiationUtil;

/**
 * Flink's {@code ExecutionPlanStore} on leasehold's execution plans: the plan Java-serialized as
 * Flink's own store serializes it (its user code stays in serialized values), and the resource
 * requirements on their own route, applied to the plan when it is recovered, as Flink's
 * DefaultExecutionPlanStore writes them into the plan. Global cleanup of a job is leasehold's
 * {@code DELETE jobs/{jobId}} (idempotent: everything of the job but its result).
 */
final class LeaseholdExecutionPlanStore implements ExecutionPlanStore {
    static final String FLINK_REQUIREMENTS = "flink.jobResourceRequirements";
    private static final ObjectMapper JSON = new ObjectMapper();

    private final ClusterClient cluster;
    private final Fence fence;

    LeaseholdExecutionPlanStore(ClusterClient cluster, Fence fence) {
        this.cluster = cluster;
        this.fence = fence;
    }

    @Override
    public void start(ExecutionPlanListener listener) {
        // Only the leader writes plans, so nothing changes under it: no listener to feed.
    }

    @Override
    public void stop() {}

    @Override
    public ExecutionPlan recoverExecutionPlan(JobID jobId) throws Exception {
        byte[] bytes = cluster.executionPlans().get(jobId.toHexString());
        if (bytes == null) return null;
        ExecutionPlan plan = InstantiationUtil.deserializeObject(bytes, Thread.currentThread().getContextClassLoader());
        JsonNode req = cluster.executionPlans().getRequirements(jobId.toHexString());
        if (req != null && req.hasNonNull(FLINK_REQUIREMENTS)) {
            JobResourceRequirements r = InstantiationUtil.deserializeObject(
                    Base64.getDecoder().decode(req.get(FLINK_REQUIREMENTS).asText()), getClass().getClassLoader());
            JobResourceRequirements.writeToExecutionPlan(plan, r);
        }
        return plan;
    }

    @Override
    public Collection<JobID> getJobIds() {
        List<JobID> ids = new ArrayList<>();
        for (String id : cluster.executionPlans().jobIds()) ids.add(JobID.fromHexString(id));
        return ids;
    }

    @Override
    public void putExecutionPlan(ExecutionPlan plan) throws Exception {
        cluster.executionPlans().put(plan.getJobID().toHexString(), InstantiationUtil.serializeObject(plan), fence);
    }

    @Override
    public void putJobResourceRequirements(JobID jobId, JobResourceRequirements requirements) throws Exception {
        ObjectNode body = JSON.createObjectNode();
        body.put(FLINK_REQUIREMENTS, Base64.getEncoder().encodeToString(InstantiationUtil.serializeObject(requirements)));
        // Readable too: parallelism bounds by vertex.
        ObjectNode byVertex = body.putObject("parallelism");
        for (var v : requirements.getJobVertices()) {
            var p = requirements.getParallelism(v);
            byVertex.putObject(v.toHexString()).put("lowerBound", p.getLowerBound()).put("upperBound", p.getUpperBound());
        }
        try {
            cluster.executionPlans().putRequirements(jobId.toHexString(), body, fence);
        } catch (LeaseholdException.NotFound e) {
            throw new NoSuchElementException("ExecutionPlan for job [" + jobId + "] was not found in leasehold,"
                    + " and is needed for attaching JobResourceRequirements.");
        }
    }

    @Override
    public CompletableFuture<Void> globalCleanupAsync(JobID jobId, Executor executor) {
        return CompletableFuture.runAsync(() -> cluster.cleanupJob(jobId.toHexString(), fence), executor);
    }
}
