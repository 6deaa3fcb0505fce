"""neuronkit.interpretability: tools to understand what neurons and representations do.

Reusable core:

* :mod:`.hooks`: :class:`LayerRecorder` (activations / gradients of named layers, hooks
  always removed), :func:`layer_activations`.
* :mod:`.attribution`: batched saliency, gradient x input, integrated gradients, SmoothGrad,
  loss gradients and a random baseline, numerically equal to Captum;
  :mod:`.layer_integrated_gradients`, :mod:`.layer_conductance`, :mod:`.grad_cam`,
  :mod:`.guided` (guided backpropagation, deconvolution, Guided Grad-CAM), :mod:`.deeplift`
  (DeepLIFT, DeepLIFT SHAP), :mod:`.gradient_shap`, :mod:`.lrp`, :mod:`.occlusion`,
  :mod:`.feature_ablation`, :mod:`.shapley` (exact and sampled Shapley values),
  :mod:`.kernel_shap`, :mod:`.lime` and :mod:`.feature_permutation`: Captum's
  ``LayerIntegratedGradients``, ``LayerConductance``, ``LayerGradCam``, ``GuidedBackprop``,
  ``Deconvolution``, ``GuidedGradCam``, ``DeepLift``, ``DeepLiftShap``, ``GradientShap``,
  ``LayerGradientShap``, ``LRP``, ``Occlusion``, ``FeatureAblation``, ``ShapleyValues``,
  ``ShapleyValueSampling``, ``KernelShap``, ``Lime`` and ``FeaturePermutation``.
* :mod:`.neuron`: attributions of one hidden unit with any input method, and neuron
  conductance (Captum's ``Neuron*`` methods).
* :mod:`.llm_attribution`: prompt-token attribution of a language model's continuation.
* :mod:`.tcav`: concept activation vectors and TCAV scores with the significance test.
* :mod:`.tracin` and :mod:`.influence_function`: training-data influence (TracIn and
  influence functions, Captum's ``TracInCP`` and ``NaiveInfluenceFunction``): proponents,
  opponents and self-influence of training examples; :mod:`.similarity_influence`: the
  training examples a layer represents like a test example (Captum's
  ``SimilarityInfluence``).
* :mod:`.attribution_eval`: infidelity and max-sensitivity of explanations (Captum's
  ``infidelity`` and ``sensitivity_max``).
* :mod:`.rsa`: RDMs (squared Euclidean, correlation, cosine, Mahalanobis, crossnobis) with
  rsatoolbox's conventions and numbers, noise precision estimates, RDM comparisons (cosine,
  correlation, their whitened forms, Spearman, rho-a, Kendall tau-a), geo-topological and
  geodesic transforms;
  :mod:`.rsa_inference`: noise ceilings and (bootstrap) evaluations of model RDMs with their
  tests (rsatoolbox's ``inference``); :mod:`.rsa_crossval`: weighted, selection and
  interpolation models of RDMs (fitted on data) and (bootstrap) cross-validation over subjects
  and conditions.
* :mod:`.information`: binned mutual information between unit activations (per-unit
  quantile bins, MI matrices, entropies).
* :mod:`.plot`: attribution maps drawn as Captum draws them, RDM heat maps, classical MDS of
  RDMs and model comparisons (headless matplotlib figures).
* :mod:`.robustness`: FGSM / PGD attacks and (adversarial) training of small classifiers.
* :mod:`.data`: BlockDigits, the synthetic signal-coordinate task, noisy layer responses.

Paper methods (each with a reproduction ``interpretability.<name>``):
:mod:`.attribution_eval.diffroar` (DiffROAR), :mod:`.representation.trsa` (topological RSA),
:mod:`.representation.convergent` (convergent learning: unit matching, sparse prediction,
spectral groups), :mod:`.geometry.level_sets` (level set traversal, ``lst``),
:mod:`.dynamics.info_plane` (information plane), :mod:`.fusion.contextual` (contextual fusion),
:mod:`.evaluators.widedeep` (WideDeep evaluator networks), :mod:`.stimuli.mds` (most
discriminative stimuli), :mod:`.visualization` (activation maximization engine and multifaceted
feature visualization, ``mfv``), :mod:`.description` (MILAN neuron descriptions) and
:mod:`.codebook` (codebook features for torch and Hugging Face models).
"""

from importlib.metadata import version as _version

from neuronkit.common.lazy import lazy_exports

__version__ = _version("neuronkit-interpretability")
# The public names are listed in __init__.pyi; each submodule is imported on first use.
__getattr__, __dir__, __all__ = lazy_exports(__name__, __file__)
