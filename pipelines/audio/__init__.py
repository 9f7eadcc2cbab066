"""Audio stage (``duet shards``): manifest → decode → track (validate, excerpt, resample, mel)
→ tar members, index rows and band statistics, written shard by shard by ``job``."""
