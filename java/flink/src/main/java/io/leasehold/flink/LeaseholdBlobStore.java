package io.leasehold.flink;

import io.leasehold.client.ClusterClient;
import io.leasehold.client.Fence;
import io.leasehold.client.LeaseholdException;
import java.io.File;
import java.io.IOException;
import org.apache.flink.api.common.JobID;
import org.apache.flink.runtime.blob.BlobKey;
import org.apache.flink.runtime.blob.BlobStoreService;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Flink's HA blob store on leasehold's blobs, streamed both ways and checked by SHA-256; blobs of
 * no job live under {@code _}. Writes are fenced by the leadership; reads (TaskManagers', a new
 * leader's) are not.
 */
final class LeaseholdBlobStore implements BlobStoreService {
    private static final Logger LOG = LoggerFactory.getLogger(LeaseholdBlobStore.class);
    private final ClusterClient cluster;
    private final Fence fence;

    LeaseholdBlobStore(ClusterClient cluster, Fence fence) {
        this.cluster = cluster;
        this.fence = fence;
    }

    private static String job(JobID jobId) {
        return jobId == null ? "_" : jobId.toHexString();
    }

    @Override
    public boolean put(File localFile, JobID jobId, BlobKey blobKey) throws IOException {
        try {
            cluster.blobs().put(job(jobId), blobKey.toString(), localFile.toPath(), fence);
            return true;
        } catch (LeaseholdException e) {
            throw new IOException("could not store blob " + blobKey + " in leasehold", e);
        }
    }

    @Override
    public boolean get(JobID jobId, BlobKey blobKey, File localFile) throws IOException {
        try {
            if (!cluster.blobs().get(job(jobId), blobKey.toString(), localFile.toPath())) {
                throw new IOException("blob " + blobKey + " of job " + jobId + " is not in leasehold");
            }
            return true;
        } catch (LeaseholdException e) {
            throw new IOException("could not read blob " + blobKey + " from leasehold", e);
        }
    }

    @Override
    public boolean delete(JobID jobId, BlobKey blobKey) {
        try {
            cluster.blobs().delete(job(jobId), blobKey.toString(), fence);
            return true;
        } catch (LeaseholdException e) {
            LOG.warn("Could not delete blob {} of job {}: {}", blobKey, jobId, e.getMessage());
            return false;
        }
    }

    @Override
    public boolean deleteAll(JobID jobId) {
        try {
            cluster.blobs().deleteAll(job(jobId), fence);
            return true;
        } catch (LeaseholdException e) {
            LOG.warn("Could not delete the blobs of job {}: {}", jobId, e.getMessage());
            return false;
        }
    }

    /** Nothing: cleanupAllData of the services deletes the whole cluster, blobs included, first. */
    @Override
    public void cleanupAllData() {}

    @Override
    public void close() {}
}
