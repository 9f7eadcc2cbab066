"""What the tests share: real inputs and one-call job runs (``helpers``), small published
tables (``tables``), a moto S3 endpoint on loopback (``s3``), planted playlist structure
(``planted``), the naive reference implementations the jobs are checked against
(``cooc_reference``, ``pairs_reference``) and the benchmarks' shared inputs (``bench``)."""
