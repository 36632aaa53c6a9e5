package io.leasehold.flink;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.flink.streaming.api.graph.StreamGraph;
import org.apache.flink.util.Collector;

/**
 * A streaming job with keyed state: it counts the numbers of a slow sequence in a ValueState and
 * records each count, with the run (each open() is a new run: a restart or a recovery), in
 * static lists that the test reads (the MiniCluster runs in the test's JVM). A run restored from
 * a checkpoint starts counting above 1; one restarted from zero starts at 1.
 */
public final class CountingJob {
    public record Count(int run, long count) {}

    public static final List<Count> COUNTS = new CopyOnWriteArrayList<>();
    public static final AtomicInteger RUNS = new AtomicInteger();

    public static StreamGraph graph(StreamExecutionEnvironment env, long end, long sleepMs) {
        env.fromSequence(1, end)
                .map(x -> {
                    Thread.sleep(sleepMs);
                    return x;
                })
                .keyBy(x -> 0L)
                .process(new Counter())
                .sinkTo(new DiscardingSink<>());
        return env.getStreamGraph();
    }

    static final class Counter extends KeyedProcessFunction<Long, Long, Long> {
        private transient ValueState<Long> count;
        private transient int run;

        @Override
        public void open(OpenContext ctx) {
            count = getRuntimeContext().getState(new ValueStateDescriptor<>("count", Long.class));
            run = RUNS.incrementAndGet();
        }

        @Override
        public void processElement(Long x, Context ctx, Collector<Long> out) throws Exception {
            long c = count.value() == null ? 1 : count.value() + 1;
            count.update(c);
            COUNTS.add(new Count(run, c));
            record(c);
            out.collect(c);
        }

        private transient long recorded;

        /**
         * In a TaskManager process (no shared memory with the test), the counts go to the file
         * named by LEASEHOLD_COUNT_FILE: "<run> <count>" for the first count of each run, then
         * every tenth.
         */
        private void record(long c) throws java.io.IOException {
            String file = System.getenv("LEASEHOLD_COUNT_FILE");
            if (file == null || (recorded++ > 0 && c % 10 != 0)) return;
            String line = run + "-" + ProcessHandle.current().pid() + " " + c + "\n";
            java.nio.file.Files.writeString(java.nio.file.Path.of(file), line,
                    java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.APPEND);
        }
    }

    private CountingJob() {}
}
