"""Rank and evaluate impression logs on Spark with giftrank, grouped by impression.

Reads a Parquet dataset, ranks every group of rows (one impression, as one ``/rank``
request) by every profile of a bundle with ``giftrank.Bundle.rank`` inside
``mapInPandas`` on the executors, then computes the grouped metrics of ``giftrank eval
--group`` (DESIGN.md section 7: Top-1%/5% capture, NDCG@100, Spearman, Recall@1%/5%,
each inside a group and averaged over the groups with a positive label) with Spark
aggregations. Its numbers equal the ``profile:<name>`` rows of

    giftrank eval --bundle BUNDLE --data DATA --label LABEL --group GROUP --json FILE

Run it locally or submit it to a cluster whose executors have the giftrank wheel:

    spark-submit --master 'local[2]' examples/spark/rank_eval.py \
        --bundle models/gift/2 --data impressions.parquet --label gift_amount \
        --group impression_id --json metrics.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Dict, Iterator, List

import pandas as pd
from pyspark import SparkFiles
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

ROW = "_giftrank_row"

RANKED = T.StructType([
    T.StructField("group", T.StringType()),
    T.StructField("row", T.LongType()),
    T.StructField("label", T.DoubleType()),
    T.StructField("profile", T.StringType()),
    T.StructField("position", T.LongType()),
    T.StructField("reranked", T.BooleanType()),
    T.StructField("score", T.DoubleType()),
])

_BUNDLES: Dict[str, object] = {}


def load_bundle(name: str):
    """The bundle shipped with ``SparkContext.addFile``, loaded once per Python worker."""
    import giftrank

    if name not in _BUNDLES:
        _BUNDLES[name] = giftrank.Bundle(SparkFiles.get(name))
    return _BUNDLES[name]


def ranker(bundle_name: str, label: str, group: str, profiles: List[str]):
    """The ``mapInPandas`` function: rows arrive sorted by group and row number within
    a partition; every complete group is ranked by every profile, the last group of a
    batch waits for the next batch (a group may straddle two batches)."""

    def rank_complete(pdf: pd.DataFrame) -> pd.DataFrame:
        bundle = load_bundle(bundle_name)
        pdf = pdf.reset_index(drop=True)
        parts = []
        for profile in profiles:
            ranked = bundle.rank(pdf, profile=profile, group=group)
            parts.append(pd.DataFrame({
                "group": ranked[group].astype(str).to_numpy(),
                "row": pdf[ROW].to_numpy()[ranked["row"].to_numpy()],
                "label": pdf[label].to_numpy(dtype="float64")[ranked["row"].to_numpy()],
                "profile": profile,
                "position": ranked["rank"].to_numpy(),
                "reranked": ranked["reranked"].to_numpy(),
                "score": ranked["score"].to_numpy(),
            }))
        return pd.concat(parts, ignore_index=True)

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        pending = None
        for batch in batches:
            if pending is not None:
                batch = pd.concat([pending, batch], ignore_index=True)
            last = batch[group].iloc[-1]
            done = batch[group] != last
            pending = batch[~done]
            if done.any():
                yield rank_complete(batch[done])
        if pending is not None and len(pending):
            yield rank_complete(pending)

    return run


def metrics(ranked: DataFrame) -> DataFrame:
    """Per profile, the DESIGN.md section 7 metrics of each group, averaged over groups."""
    by_group = ["profile", "group"]
    w = Window.partitionBy(*by_group)
    truth = Window.partitionBy(*by_group).orderBy(F.col("label").desc(), F.col("row"))
    ties = Window.partitionBy("profile", "group", "label")
    df = (
        ranked
        .withColumn("n", F.count(F.lit(1)).over(w))
        .withColumn("label_sum", F.sum("label").over(w))
        .withColumn("true_rank", F.row_number().over(truth) - 1)
        .withColumn("k1", F.ceil(F.col("n") * 1 / 100))
        .withColumn("k5", F.ceil(F.col("n") * 5 / 100))
        # Average rank of the label (ties share the mean of their ranks), ascending.
        .withColumn("label_rank",
                    F.rank().over(Window.partitionBy(*by_group).orderBy("label"))
                    + (F.count(F.lit(1)).over(ties) - 1) / 2.0)
        .where(F.col("label_sum") > 0)
    )
    log2 = lambda c: F.log2(c + 2)  # noqa: E731
    per_group = df.groupBy(*by_group).agg(
        (F.sum(F.when((F.col("true_rank") < F.col("k1")) & (F.col("position") < F.col("k1")), 1).otherwise(0))
         / F.first("k1")).alias("top1"),
        (F.sum(F.when((F.col("true_rank") < F.col("k5")) & (F.col("position") < F.col("k5")), 1).otherwise(0))
         / F.first("k5")).alias("top5"),
        (F.sum(F.when(F.col("position") < 100, F.col("label") / log2(F.col("position"))).otherwise(0.0))
         / F.sum(F.when(F.col("true_rank") < 100, F.col("label") / log2(F.col("true_rank"))).otherwise(0.0))
         ).alias("ndcg100"),
        F.corr("label_rank", -F.col("position")).alias("spearman"),
        (F.sum(F.when((F.col("true_rank") < F.col("k1")) & F.col("reranked"), 1).otherwise(0))
         / F.first("k1")).alias("recall1"),
        (F.sum(F.when((F.col("true_rank") < F.col("k5")) & F.col("reranked"), 1).otherwise(0))
         / F.first("k5")).alias("recall5"),
        F.max(F.col("reranked").cast("int")).alias("any_reranked"),
    )
    defined = F.when(~F.isnan("spearman"), F.col("spearman"))
    return per_group.groupBy("profile").agg(
        F.count(F.lit(1)).alias("groups_used"),
        F.avg("top1").alias("top1"),
        F.avg("top5").alias("top5"),
        F.avg("ndcg100").alias("ndcg100"),
        F.avg(defined).alias("spearman"),
        F.avg("recall1").alias("recall1"),
        F.avg("recall5").alias("recall5"),
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--master", default=None, help="Spark master, e.g. local[2] or yarn (default: spark-submit's)")
    parser.add_argument("--bundle", required=True, help="bundle directory (bundle.toml and its models)")
    parser.add_argument("--data", required=True, help="Parquet file or directory")
    parser.add_argument("--label", required=True)
    parser.add_argument("--group", required=True, help="one ranking per value of this column")
    parser.add_argument("--json", help="write the metrics here")
    parser.add_argument("--out", help="write the ranked rows here (Parquet)")
    args = parser.parse_args(argv)

    builder = SparkSession.builder.appName("giftrank-rank-eval")
    if args.master:
        builder = builder.master(args.master)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    bundle_dir = os.path.abspath(args.bundle)
    spark.sparkContext.addFile(bundle_dir, recursive=True)
    name = os.path.basename(bundle_dir.rstrip("/"))

    import giftrank

    profiles = [p["name"] for p in giftrank.Bundle(bundle_dir).profiles]
    started = time.perf_counter()
    data = spark.read.parquet(args.data)
    # The row number keeps the file's order, which breaks ties as the CLI does.
    data = data.withColumn(ROW, F.monotonically_increasing_id())
    parts = spark.sparkContext.defaultParallelism
    ranked = (
        data.repartition(parts, args.group)
        .sortWithinPartitions(args.group, ROW)
        .mapInPandas(ranker(name, args.label, args.group, profiles), RANKED)
        .cache()
    )
    rows = ranked.where(F.col("profile") == profiles[0]).count()
    groups = ranked.where(F.col("profile") == profiles[0]).select("group").distinct().count()
    result = {row["profile"]: row.asDict() for row in metrics(ranked).collect()}
    if args.out:
        ranked.write.mode("overwrite").parquet(args.out)
    seconds = time.perf_counter() - started

    bundle = giftrank.Bundle(bundle_dir)
    methods = []
    for p in bundle.profiles:
        r = result.get(p["name"], {})
        row = {"name": f"profile:{p['name']}", "m": p["recall"][0]["m"] if p["recall"] else None,
               "top1": r.get("top1") or 0.0, "top5": r.get("top5") or 0.0,
               "ndcg100": r.get("ndcg100") or 0.0, "spearman": r.get("spearman")}
        if p["recall"]:
            row.update(recall1=r.get("recall1") or 0.0, recall5=r.get("recall5") or 0.0)
        methods.append(row)
    used = max((r["groups_used"] for r in result.values()), default=0)
    report = {"n": rows, "groups": groups, "groups_used": used, "methods": methods,
              "seconds": seconds, "rows_per_second": rows / seconds if seconds else None}
    text = json.dumps(report, indent=2)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    print(text)
    spark.stop()


if __name__ == "__main__":
    main()
