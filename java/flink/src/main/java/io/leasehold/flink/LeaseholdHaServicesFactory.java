package io.leasehold.flink;

import java.util.concurrent.Executor;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.runtime.highavailability.HighAvailabilityServices;
import org.apache.flink.runtime.highavailability.HighAvailabilityServicesFactory;

/**
 * {@code high-availability.type: io.leasehold.flink.LeaseholdHaServicesFactory}: every piece of the
 * cluster's HA metadata in leasehold (leaders, job results, execution plans, checkpoints, the
 * checkpoint id counter, blobs), none in {@code high-availability.storageDir}.
 */
public class LeaseholdHaServicesFactory implements HighAvailabilityServicesFactory {
    @Override
    public HighAvailabilityServices createHAServices(Configuration configuration, Executor executor) {
        return LeaseholdHaServices.create(configuration, executor);
    }
}
