"""Each paper's evaluation protocol on the tables duet writes (``duet evaluate --protocol``).

==================== ============================================ =============================
protocol             paper                                         measures
==================== ============================================ =============================
clmr-linear          CLMR (ISMIR 2021); PEMR's MTAT tagging        tag/clip ROC-AUC, PR-AUC
choi                 Choi et al. (ICME 2022)                       SVM / logistic accuracy or AUC
alonso-finetune      Alonso-Jiménez et al. (ICASSP 2023)           fine-tuned ROC-AUC, PR-AUC
ferraro-continuation Ferraro et al. (IEEE SPL 2021)                nDCG@100, MAP@100
pemr-cover           PEMR (WWW 2022)                               MAP, P@10, MR1
==================== ============================================ =============================

Every protocol but ``alonso-finetune`` (which fine-tunes a checkpoint on the audio) reads an
embedding table (``duet embed``), returns a JSON-able report and a
Markdown ``table`` in the paper's layout (``runner``); the scorers are pure functions
(``ranking``, ``retrieval``, ``classification``).
"""
