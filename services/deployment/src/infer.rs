//! The inference engine: ONNX in process (tract), other formats forwarded upstream.
