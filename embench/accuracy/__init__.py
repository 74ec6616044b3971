"""Accuracy on labelled images through the backend that was timed (accuracy=imagefolder).

images: the labelled folder, its class map and its order, checked before anything is measured;
preprocess: each network's resize, crop and normalisation; intervals: the statistics of a count;
evaluate: the pass itself, after timing, with the FP32 reference it is compared to.
"""
