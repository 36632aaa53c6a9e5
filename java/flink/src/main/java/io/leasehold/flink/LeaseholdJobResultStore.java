package io.leasehold.flink;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.leasehold.client.ClusterClient;
import io.leasehold.client.Fence;
import io.leasehold.client.LeaseholdException;
import java.io.IOException;
import java.util.Base64;
import java.util.HashSet;
import java.util.NoSuchElementException;
import java.util.Set;
import java.util.concurrent.Executor;
import org.apache.flink.api.common.JobID;
import org.apache.flink.runtime.highavailability.AbstractThreadsafeJobResultStore;
import org.apache.flink.runtime.highavailability.JobResultEntry;
import org.apache.flink.runtime.jobmaster.JobResult;
import org.apache.flink.util.InstantiationUtil;

/**
 * Flink's {@code JobResultStore} on leasehold's job results (dirty, then clean), fenced by the
 * leadership. The entry carries the fields people read ({@code applicationStatus}, {@code
 * netRuntimeMs}, {@code failureCause}) and, under {@code accumulatorResults}, Flink's whole
 * {@link JobResult} (Java-serialized, base64) from which a new leader recovers it exactly.
 */
final class LeaseholdJobResultStore extends AbstractThreadsafeJobResultStore {
    static final String FLINK_RESULT = "flink.jobResult";
    private static final ObjectMapper JSON = new ObjectMapper();

    private final ClusterClient cluster;
    private final Fence fence;

    LeaseholdJobResultStore(ClusterClient cluster, Fence fence, Executor ioExecutor) {
        super(ioExecutor);
        this.cluster = cluster;
        this.fence = fence;
    }

    @Override
    protected void createDirtyResultInternal(JobResultEntry entry) throws IOException {
        JobResult r = entry.getJobResult();
        ObjectNode body = JSON.createObjectNode().put("applicationStatus", r.getApplicationStatus().name())
                .put("netRuntimeMs", Math.max(0, r.getNetRuntime()));
        r.getSerializedThrowable().ifPresent(t -> {
            String cause = t.getOriginalErrorClassName() + ": " + t.getMessage();
            body.put("failureCause", cause.length() > 65536 ? cause.substring(0, 65536) : cause);
        });
        body.putObject("accumulatorResults").put(FLINK_RESULT, Base64.getEncoder().encodeToString(InstantiationUtil.serializeObject(r)));
        try {
            cluster.jobResults().createDirty(entry.getJobId().toHexString(), body, fence);
        } catch (LeaseholdException e) {
            throw new IOException("could not store the dirty result of job " + entry.getJobId(), e);
        }
    }

    @Override
    protected void markResultAsCleanInternal(JobID jobId) throws IOException, NoSuchElementException {
        try {
            cluster.jobResults().markClean(jobId.toHexString(), fence);
        } catch (LeaseholdException.NotFound e) {
            throw new NoSuchElementException("no result of job " + jobId + " in leasehold");
        } catch (LeaseholdException e) {
            throw new IOException("could not mark the result of job " + jobId + " clean", e);
        }
    }

    private String state(JobID jobId) throws IOException {
        try {
            JsonNode e = cluster.jobResults().get(jobId.toHexString());
            return e == null ? null : e.path("state").asText();
        } catch (LeaseholdException e) {
            throw new IOException(e);
        }
    }

    @Override
    protected boolean hasDirtyJobResultEntryInternal(JobID jobId) throws IOException {
        return "dirty".equals(state(jobId));
    }

    @Override
    protected boolean hasCleanJobResultEntryInternal(JobID jobId) throws IOException {
        return "clean".equals(state(jobId));
    }

    @Override
    protected Set<JobResult> getDirtyResultsInternal() throws IOException {
        Set<JobResult> out = new HashSet<>();
        try {
            for (JsonNode e : cluster.jobResults().list("dirty")) {
                String b64 = e.path("accumulatorResults").path(FLINK_RESULT).asText(null);
                if (b64 == null) throw new IOException("job result " + e.path("jobId").asText() + " was not written by Flink");
                out.add(InstantiationUtil.deserializeObject(Base64.getDecoder().decode(b64), getClass().getClassLoader()));
            }
        } catch (LeaseholdException | ClassNotFoundException e) {
            throw new IOException("could not read the dirty job results", e);
        }
        return out;
    }
}
